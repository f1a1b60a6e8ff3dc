import RPCCore

/// One step of a connection test, as the front end shows it.
public struct ConnectionCheck: Sendable, Equatable, JSONRepresentable {
    public var name: String
    public var ok: Bool
    public var durationMs: Int
    public var message: String

    public init(name: String, ok: Bool, durationMs: Int, message: String) {
        self.name = name
        self.ok = ok
        self.durationMs = durationMs
        self.message = message
    }

    public var json: JSONValue {
        ["name": .string(name), "ok": .bool(ok), "durationMs": .int(durationMs), "message": .string(message)]
    }
}

/// The outcome of testing one side: its checks, and the error that stopped it.
public struct SystemTestResult: Sendable, JSONRepresentable {
    public var side: WizardSide
    public var system: String?
    public var checks: [ConnectionCheck]
    public var error: RPCError?

    public init(side: WizardSide, system: String?, checks: [ConnectionCheck], error: RPCError?) {
        self.side = side
        self.system = system
        self.checks = checks
        self.error = error
    }

    public var ok: Bool { error == nil && !checks.isEmpty && checks.allSatisfy(\.ok) }

    public var json: JSONValue {
        var o = JSONObject()
        o.append("system", .string(side.rawValue))
        o.append("calendarSystem", side == .calendar ? (system.map(JSONValue.string) ?? .null) : .null)
        o.append("ok", .bool(ok))
        o.append("checks", checks.json)
        if let error { o.append("error", error.json) }
        return .object(o)
    }
}

public enum TestConnection: RPCMethod {
    public static let name = "testConnection"

    public enum Target: String, Sendable, CaseIterable {
        case superOffice, calendar, all
    }

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["profileId", "system"]
        public var profileId: String
        public var target: Target

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            profileId = try reader.profileId()
            target = try reader.optionalEnum("system", Target.self) ?? .all
        }
    }

    public struct Result: JSONRepresentable {
        public var results: [SystemTestResult]
        public init(results: [SystemTestResult]) { self.results = results }
        public var json: JSONValue { ["results": .array(results.map(\.json))] }
    }
}
