import RPCCore

/// The outcome of the last connection test of one system.
public struct TestOutcome: Sendable, Equatable, JSONRepresentable {
    public var ok: Bool
    public var at: String
    public var message: String?

    public init(ok: Bool, at: String, message: String? = nil) {
        self.ok = ok
        self.at = at
        self.message = message
    }

    public var json: JSONValue {
        var o = JSONObject([("ok", .bool(ok)), ("at", .string(at))])
        if let message { o.append("message", .string(message)) }
        return .object(o)
    }

    public init?(json: JSONValue?) {
        guard let json, let ok = json["ok"]?.boolValue, let at = json["at"]?.stringValue else { return nil }
        self.init(ok: ok, at: at, message: json["message"]?.stringValue)
    }
}

/// What a profile knows about one system. Secrets are never here, only whether one exists.
/// Connectors fill `settings` (user name, domain, endpoints...) and `account` (who signed in).
public struct SystemConnection: Sendable, Equatable, JSONRepresentable {
    public var hasPassword: Bool
    public var hasRefreshToken: Bool
    public var settings: JSONObject
    public var account: JSONObject?
    public var lastTest: TestOutcome?
    /// Bumped whenever credentials or endpoints change, so a test of older settings never counts.
    public var revision: Int

    public init(
        hasPassword: Bool = false, hasRefreshToken: Bool = false, settings: JSONObject = JSONObject(), account: JSONObject? = nil,
        lastTest: TestOutcome? = nil, revision: Int = 0
    ) {
        self.hasPassword = hasPassword
        self.hasRefreshToken = hasRefreshToken
        self.settings = settings
        self.account = account
        self.lastTest = lastTest
        self.revision = revision
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.append("hasPassword", .bool(hasPassword))
        o.append("hasRefreshToken", .bool(hasRefreshToken))
        o.append("settings", .object(settings))
        o.append("account", account.map(JSONValue.object) ?? .null)
        o.append("lastTest", lastTest.json)
        o.append("revision", .int(revision))
        return .object(o)
    }

    public init(json: JSONValue?) {
        self.init(
            hasPassword: json?["hasPassword"]?.boolValue ?? false,
            hasRefreshToken: json?["hasRefreshToken"]?.boolValue ?? false,
            settings: json?["settings"]?.objectValue ?? JSONObject(),
            account: json?["account"]?.objectValue,
            lastTest: TestOutcome(json: json?["lastTest"]),
            revision: json?["revision"]?.intValue ?? 0)
    }
}

/// A synchronizer profile as front ends see it and as it is stored on disk.
/// Never holds a password, token or client secret.
public struct Profile: Sendable, Equatable, JSONRepresentable {
    public static let formatVersion = 1

    public var id: String
    public var name: String
    public var createdAt: String
    public var updatedAt: String
    public var superOffice: SystemConnection
    public var calendarSystem: System?
    /// Every calendar system this profile has been connected to: switching keeps the others.
    public var calendars: [System: SystemConnection]
    /// Certificates the user chose to trust (trustCertificate), by host.
    public var trustedCertificates: [TrustedCertificate]

    public init(id: String, name: String, createdAt: String) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.superOffice = SystemConnection()
        self.calendarSystem = nil
        self.calendars = [:]
        self.trustedCertificates = []
    }

    public var json: JSONValue {
        var calendar = JSONObject()
        calendar.append("system", calendarSystem.map { .string($0.rawValue) } ?? .null)
        for system in System.calendars {
            if let connection = calendars[system] { calendar.append(system.rawValue, connection.json) }
        }
        return [
            "id": .string(id),
            "name": .string(name),
            "createdAt": .string(createdAt),
            "updatedAt": .string(updatedAt),
            "superOffice": superOffice.json,
            "calendar": .object(calendar),
            "trustedCertificates": trustedCertificates.json,
        ]
    }

    /// The stored form adds a format version so later releases can migrate old files.
    public var storedJSON: JSONValue {
        guard case .object(var o) = json else { return json }
        o["formatVersion"] = .int(Self.formatVersion)
        return .object(o)
    }

    public init?(json: JSONValue) {
        guard let id = json["id"]?.stringValue, let name = json["name"]?.stringValue,
            let createdAt = json["createdAt"]?.stringValue
        else { return nil }
        self.init(id: id, name: name, createdAt: createdAt)
        updatedAt = json["updatedAt"]?.stringValue ?? createdAt
        superOffice = SystemConnection(json: json["superOffice"])
        let calendar = json["calendar"]
        calendarSystem = calendar?["system"]?.stringValue.flatMap(System.init(rawValue:)).flatMap { $0.isCalendar ? $0 : nil }
        for system in System.calendars {
            if let stored = calendar?[system.rawValue] { calendars[system] = SystemConnection(json: stored) }
        }
        trustedCertificates = (json["trustedCertificates"]?.arrayValue ?? []).compactMap(TrustedCertificate.init(json:))
    }

    /// Pinned fingerprints for one host.
    public func pins(for host: String) -> [String] {
        trustedCertificates.filter { $0.host == host.lowercased() }.map(\.sha256)
    }

    /// The connection of any system: SuperOffice's, or a calendar system's (empty until used).
    public func connection(for system: System) -> SystemConnection {
        system == .superOffice ? superOffice : calendars[system] ?? SystemConnection()
    }

    /// Replaces the connection of any system.
    public mutating func setConnection(_ connection: SystemConnection, for system: System) {
        if system == .superOffice { superOffice = connection } else { calendars[system] = connection }
    }
}

public struct TrustedCertificate: Sendable, Equatable, JSONRepresentable {
    public var host: String
    public var sha256: String

    public init(host: String, sha256: String) {
        self.host = host
        self.sha256 = sha256
    }

    public var json: JSONValue { ["host": .string(host), "sha256": .string(sha256)] }

    public init?(json: JSONValue) {
        guard let host = json["host"]?.stringValue, let sha256 = json["sha256"]?.stringValue else { return nil }
        self.init(host: host, sha256: sha256)
    }
}
