import RPCCore

/// One step of a diagnosis: what was checked, how it came out, how long it took, and for a
/// warning or failure the contract's error kind and what a person should do about it.
public struct DiagnosisStep: Sendable, Equatable, JSONRepresentable {
    public enum Status: String, Sendable, CaseIterable {
        case pass, warn, fail, skipped
    }

    public var id: String
    /// The profile's system the step belongs to (`superOffice`, `exchange`, `microsoft365`, `google`).
    public var system: String
    public var title: String
    public var status: Status
    public var durationMs: Int
    public var message: String
    /// Present on every warn and fail.
    public var kind: ErrorKind?
    public var remediation: String?
    /// What was seen (hosts, addresses, versions, certificate facts, scopes); never a secret.
    public var evidence: JSONObject

    public init(
        id: String, system: String, title: String, status: Status, durationMs: Int, message: String, kind: ErrorKind? = nil,
        remediation: String? = nil, evidence: JSONObject = JSONObject()
    ) {
        self.id = id
        self.system = system
        self.title = title
        self.status = status
        self.durationMs = durationMs
        self.message = message
        self.kind = kind
        self.remediation = remediation
        self.evidence = evidence
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.append("id", .string(id))
        o.append("system", .string(system))
        o.append("title", .string(title))
        o.append("status", .string(status.rawValue))
        o.append("durationMs", .int(durationMs))
        o.append("message", .string(message))
        if let kind { o.append("kind", .string(kind.name)) }
        if let remediation { o.append("remediation", .string(remediation)) }
        if !evidence.members.isEmpty { o.append("evidence", .object(evidence)) }
        return .object(o)
    }
}

/// Runs every step of the path to the profile's systems and explains each failure; with
/// `reportPath` also writes a Markdown report (mode 0600) for a support ticket.
public enum Diagnose: RPCMethod {
    public static let name = "diagnose"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["profileId", "system", "reportPath"]
        public var profileId: String
        public var target: TestConnection.Target
        public var reportPath: String?

        public init(profileId: String, target: TestConnection.Target = .all, reportPath: String? = nil) {
            self.profileId = profileId
            self.target = target
            self.reportPath = reportPath
        }

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            profileId = try reader.profileId()
            target = try reader.optionalEnum("system", TestConnection.Target.self) ?? .all
            reportPath = try reader.optionalString("reportPath", maxLength: 4096)
            if let path = reportPath, !path.hasPrefix("/") {
                throw .invalidParams(field: "reportPath", "'reportPath' must be an absolute file path.")
            }
        }
    }

    public struct Result: Sendable, JSONRepresentable {
        public var generatedAt: String
        public var steps: [DiagnosisStep]
        public var reportPath: String?

        public init(generatedAt: String, steps: [DiagnosisStep], reportPath: String?) {
            self.generatedAt = generatedAt
            self.steps = steps
            self.reportPath = reportPath
        }

        /// False when any step failed; warnings do not make it false.
        public var ok: Bool { !steps.contains { $0.status == .fail } }

        public var json: JSONValue {
            var o = JSONObject()
            o.append("ok", .bool(ok))
            o.append("generatedAt", .string(generatedAt))
            o.append("steps", .array(steps.map(\.json)))
            if let reportPath { o.append("reportPath", .string(reportPath)) }
            return .object(o)
        }
    }
}
