import RPCCore

/// Where one side of the "Configure Systems" step stands.
public struct SystemState: Sendable, Equatable, JSONRepresentable {
    public enum Status: String, Sendable, CaseIterable {
        /// No system chosen yet (calendar side only).
        case notSelected
        /// Nothing entered or signed in yet.
        case notConfigured
        /// Credentials exist but no passing test of them.
        case needsTest
        /// The last test of the current credentials failed.
        case testFailed
        /// Credentials exist and the last test passed.
        case connected
    }

    public var system: String?
    /// The calendar side always reports `system`, null before one is chosen.
    public var reportsSystem: Bool
    public var status: Status
    public var lastTest: TestOutcome?
    public var account: JSONObject?

    public init(system: String? = nil, reportsSystem: Bool = false, status: Status, lastTest: TestOutcome? = nil, account: JSONObject? = nil) {
        self.system = system
        self.reportsSystem = reportsSystem || system != nil
        self.status = status
        self.lastTest = lastTest
        self.account = account
    }

    public var connected: Bool { status == .connected }

    public var json: JSONValue {
        var o = JSONObject()
        if reportsSystem { o.append("system", system.map(JSONValue.string) ?? .null) }
        o.append("status", .string(status.rawValue))
        o.append("connected", .bool(connected))
        o.append("tested", .bool(lastTest != nil))
        o.append("lastTest", lastTest.json)
        o.append("account", account.map(JSONValue.object) ?? .null)
        return .object(o)
    }
}

/// Something that keeps the wizard from moving on, with the error kind that names it.
public struct Blocker: Sendable, Equatable, JSONRepresentable {
    public var system: WizardSide
    public var kind: String
    public var message: String

    public init(system: WizardSide, kind: String, message: String) {
        self.system = system
        self.kind = kind
        self.message = message
    }

    public var json: JSONValue {
        ["system": .string(system.rawValue), "kind": .string(kind), "message": .string(message)]
    }
}

/// Blocker kinds (stable names, documented in Protocol/openrpc.json).
public enum BlockerKind {
    public static let systemNotSelected = "systemNotSelected"
    public static let providerNotConfigured = "providerNotConfigured"
    public static let signInRequired = "signInRequired"
    public static let credentialsRequired = "credentialsRequired"
    public static let endpointsRequired = "endpointsRequired"
    public static let connectionNotTested = "connectionNotTested"
    public static let connectionTestFailed = "connectionTestFailed"
    public static let all = [
        systemNotSelected, providerNotConfigured, signInRequired,
        credentialsRequired, endpointsRequired, connectionNotTested, connectionTestFailed,
    ]
}

public struct WizardState: Sendable, Equatable, JSONRepresentable {
    public static let stepName = "configureSystems"
    /// The wizard step after "Configure Systems".
    public static let followingStep = "selectUsers"

    public var superOffice: SystemState
    public var calendar: SystemState
    public var blockers: [Blocker]

    public init(superOffice: SystemState, calendar: SystemState, blockers: [Blocker]) {
        self.superOffice = superOffice
        self.calendar = calendar
        self.blockers = blockers
    }

    public var canContinue: Bool { blockers.isEmpty }

    public var json: JSONValue {
        [
            "step": .string(Self.stepName),
            "superOffice": superOffice.json,
            "calendar": calendar.json,
            "canContinue": .bool(canContinue),
            "blockers": blockers.json,
        ]
    }
}
