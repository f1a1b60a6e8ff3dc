import RPCCore

/// Typed views of `SystemConnection.settings`, one per system. The profile file keeps the
/// settings as a JSON object (its format is the contract's); code reads and writes them only
/// through these, so no key is spelled twice.

/// Where the calendar's EWS and OAB URLs come from: Autodiscover or the user (Exchange; for
/// Microsoft 365 only the user's override).
public enum EndpointSource: String, Sendable, CaseIterable {
    case autodiscover, override
}

/// The EWS and OAB URLs in force, and what Autodiscover last found.
public struct EndpointSettings: Sendable, Equatable {
    public var ewsUrl: String?
    public var oabUrl: String?
    public var source: EndpointSource?
    public var discoveredEwsUrl: String?
    public var discoveredOabUrl: String?
    /// The Autodiscover URL that answered (Exchange), asked first by the next profile of the
    /// same e-mail domain.
    public var discoveredAutodiscoverUrl: String?

    public init(_ settings: JSONObject) {
        ewsUrl = settings["ewsUrl"]?.stringValue
        oabUrl = settings["oabUrl"]?.stringValue
        source = settings["endpointSource"]?.stringValue.flatMap(EndpointSource.init(rawValue:))
        discoveredEwsUrl = settings["discoveredEwsUrl"]?.stringValue
        discoveredOabUrl = settings["discoveredOabUrl"]?.stringValue
        discoveredAutodiscoverUrl = settings["discoveredAutodiscoverUrl"]?.stringValue
    }

    /// Writes the URLs in force (a missing OAB URL as null, as the profile always had it).
    public func applyInForce(to settings: inout JSONObject) {
        settings.put("ewsUrl", ewsUrl, null: false)
        settings.put("oabUrl", oabUrl, null: true)
        settings.put("endpointSource", source?.rawValue, null: false)
    }

    public func applyDiscovered(to settings: inout JSONObject) {
        settings.put("discoveredEwsUrl", discoveredEwsUrl, null: false)
        settings.put("discoveredOabUrl", discoveredOabUrl, null: true)
        settings.put("discoveredAutodiscoverUrl", discoveredAutodiscoverUrl, null: false)
    }
}

public struct ExchangeSettings: Sendable, Equatable {
    public var userName: String?
    public var domain: String?
    public var email: String?
    /// The mailbox the service account acts for (impersonation), if any.
    public var impersonateMailbox: String?
    public var endpoints: EndpointSettings

    public init(_ settings: JSONObject) {
        userName = settings["userName"]?.stringValue
        domain = settings["domain"]?.stringValue
        email = settings["email"]?.stringValue
        impersonateMailbox = settings["impersonateMailbox"]?.stringValue
        endpoints = EndpointSettings(settings)
    }

    public func applyAccount(to settings: inout JSONObject) {
        settings.put("userName", userName, null: true)
        settings.put("domain", domain, null: true)
        settings.put("email", email, null: true)
        settings.put("impersonateMailbox", impersonateMailbox, null: true)
    }
}

public struct Microsoft365Settings: Sendable, Equatable {
    public var endpoints: EndpointSettings
    public var adminConsentGranted: Bool
    public var tenantId: String?

    public init(_ settings: JSONObject) {
        endpoints = EndpointSettings(settings)
        adminConsentGranted = settings["adminConsentGranted"]?.boolValue ?? false
        tenantId = settings["tenantId"]?.stringValue
    }

    /// What a sign-in adds: a tenant-wide consent. The EWS URL Autodiscover v2 names comes
    /// later (`fileDiscoveredEws`), looked up after the sign-in is kept.
    public static func afterSignIn(adminConsentTenant: String??) -> JSONObject {
        var settings = JSONObject()
        if let tenant = adminConsentTenant {
            settings["adminConsentGranted"] = true
            settings["tenantId"] = tenant.map(JSONValue.string) ?? .null
        }
        return settings
    }

    public static func fileDiscoveredEws(_ url: String, into settings: inout JSONObject) {
        settings.put("discoveredEwsUrl", url, null: false)
    }
}

public struct SuperOfficeSettings: Sendable, Equatable {
    public var environment: SuperOfficeEnvironment?

    public init(_ settings: JSONObject) {
        environment = settings["environment"]?.stringValue.flatMap(SuperOfficeEnvironment.init(rawValue:))
    }

    public static func afterSignIn(environment: SuperOfficeEnvironment) -> JSONObject {
        ["environment": .string(environment.rawValue)]
    }
}

extension JSONObject {
    /// Sets `key` to the string, or to null (`null: true`) or leaves it out when there is none.
    mutating func put(_ key: String, _ value: String?, null: Bool) {
        if let value { self[key] = .string(value) } else if null { self[key] = .null } else { self[key] = nil }
    }
}
