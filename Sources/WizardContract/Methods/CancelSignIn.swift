import RPCCore

public struct SignInIDParams: RPCParams, Equatable {
    public static let parameterNames = ["signInId"]
    public var signInId: String
    public init(reading reader: inout ParamsReader) throws(RPCError) {
        signInId = try reader.requiredNonEmptyString("signInId", maxLength: 128)
    }
}

public enum CancelSignIn: RPCMethod {
    public static let name = "cancelSignIn"
    public typealias Params = SignInIDParams

    /// `{cancelled: true}`, or `{cancelled: false, outcome}` for a sign-in that had already finished.
    public struct Result: Sendable, Equatable, JSONRepresentable {
        public enum Outcome: String, Sendable { case completed, failed }
        public var outcome: Outcome?
        public init(alreadyFinished outcome: Outcome? = nil) { self.outcome = outcome }
        public var json: JSONValue {
            guard let outcome else { return ["cancelled": true] }
            return ["cancelled": false, "outcome": .string(outcome.rawValue)]
        }
    }
}
