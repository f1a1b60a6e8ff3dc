import RPCCore

/// For a browser on another machine: the user pastes the URL the browser ended on.
public enum CompleteSignIn: RPCMethod {
    public static let name = "completeSignIn"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["signInId", "redirectUrl"]
        public var signInId: String
        public var redirectUrl: String
        public init(reading reader: inout ParamsReader) throws(RPCError) {
            signInId = try reader.requiredNonEmptyString("signInId", maxLength: 128)
            redirectUrl = try reader.requiredNonEmptyString("redirectUrl", maxLength: 16384)
        }
    }

    public typealias Result = SignInCompleted
}
