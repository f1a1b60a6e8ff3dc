import RPCCore

/// Waits for a sign-in's outcome: the signInCompleted payload, or the sign-in's error.
public enum AwaitSignIn: RPCMethod {
    public static let name = "awaitSignIn"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["signInId", "timeoutSeconds"]
        public var signInId: String
        public var timeoutSeconds: Double?
        public init(reading reader: inout ParamsReader) throws(RPCError) {
            signInId = try reader.requiredNonEmptyString("signInId", maxLength: 128)
            timeoutSeconds = try reader.optionalNumber("timeoutSeconds", range: 0...3600)
        }
    }

    public typealias Result = SignInCompleted
}
