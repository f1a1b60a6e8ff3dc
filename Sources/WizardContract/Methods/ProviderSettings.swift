import RPCCore

/// A system's OAuth client registration. The client secret is never part of this value:
/// it lives in the keyring and `hasClientSecret` says whether one is stored.
public struct ProviderSettings: Sendable, Equatable, JSONRepresentable {
    public var system: System
    public var clientId: String
    public var hasClientSecret: Bool
    /// SuperOffice only.
    public var environment: SuperOfficeEnvironment?
    /// Microsoft only (default `organizations`).
    public var tenant: String?

    public init(
        system: System, clientId: String, hasClientSecret: Bool = false,
        environment: SuperOfficeEnvironment? = nil, tenant: String? = nil
    ) {
        self.system = system
        self.clientId = clientId
        self.hasClientSecret = hasClientSecret
        self.environment = environment
        self.tenant = tenant
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.append("system", .string(system.rawValue))
        o.append("clientId", .string(clientId))
        o.append("hasClientSecret", .bool(hasClientSecret))
        if let environment { o.append("environment", .string(environment.rawValue)) }
        if let tenant { o.append("tenant", .string(tenant)) }
        return .object(o)
    }

    public init?(json: JSONValue) {
        guard let system = json["system"]?.stringValue.flatMap(System.init(rawValue:)), system.usesOAuth,
            let clientId = json["clientId"]?.stringValue
        else { return nil }
        self.init(
            system: system, clientId: clientId,
            hasClientSecret: json["hasClientSecret"]?.boolValue ?? false,
            environment: json["environment"]?.stringValue.flatMap(SuperOfficeEnvironment.init(rawValue:)),
            tenant: json["tenant"]?.stringValue)
    }
}
