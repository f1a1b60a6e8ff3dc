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

    public init(system: System, clientId: String, hasClientSecret: Bool = false,
                environment: SuperOfficeEnvironment? = nil, tenant: String? = nil) {
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
              let clientId = json["clientId"]?.stringValue else { return nil }
        self.init(system: system, clientId: clientId,
                  hasClientSecret: json["hasClientSecret"]?.boolValue ?? false,
                  environment: json["environment"]?.stringValue.flatMap(SuperOfficeEnvironment.init(rawValue:)),
                  tenant: json["tenant"]?.stringValue)
    }
}

public enum SetProviderSettings: RPCMethod {
    public static let name = "setProviderSettings"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["system", "clientId", "clientSecret", "environment", "tenant"]
        public var system: System
        public var clientId: String
        /// nil keeps a stored secret; "" removes it.
        public var clientSecret: String?
        public var environment: SuperOfficeEnvironment?
        public var tenant: String?

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            system = try reader.requiredEnum("system", System.self, among: System.signIns)
            clientId = try reader.requiredNonEmptyString("clientId", maxLength: 512)
            clientSecret = try reader.optionalString("clientSecret", maxLength: 4096)
            environment = try reader.optionalEnum("environment", SuperOfficeEnvironment.self)
            tenant = try reader.optionalString("tenant", maxLength: 256)
            if environment != nil, system != .superOffice {
                throw .invalidParams(field: "environment", "'environment' applies to superOffice only.")
            }
            if let tenant {
                guard system == .microsoft365 else {
                    throw .invalidParams(field: "tenant", "'tenant' applies to microsoft365 only.")
                }
                let allowed = tenant.unicodeScalars.allSatisfy {
                    ($0.properties.isASCIIHexDigit || $0.properties.isAlphabetic && $0.isASCII) || "-._".unicodeScalars.contains($0) || ("0"..."9").contains($0)
                }
                guard !tenant.isEmpty, allowed else {
                    throw .invalidParams(field: "tenant", "'tenant' must be a tenant id, a domain such as contoso.onmicrosoft.com, 'organizations' or 'common'.")
                }
            }
        }
    }

    public typealias Result = ProviderSettings
}

public enum GetProviderSettings: RPCMethod {
    public static let name = "getProviderSettings"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["system"]
        public var system: System?
        public init(reading reader: inout ParamsReader) throws(RPCError) {
            system = try reader.optionalEnum("system", System.self, among: System.signIns)
        }
    }

    public struct Result: JSONRepresentable {
        public var providers: [ProviderSettings]
        public init(providers: [ProviderSettings]) { self.providers = providers }
        public var json: JSONValue { ["providers": .array(providers.map(\.json))] }
    }
}
