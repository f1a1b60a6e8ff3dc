import RPCCore

/// Removes a system's tokens (or the Exchange password) from the keyring and the profile.
public enum SignOut: RPCMethod {
    public static let name = "signOut"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["profileId", "system"]
        public var profileId: String
        public var system: System
        public init(reading reader: inout ParamsReader) throws(RPCError) {
            profileId = try reader.profileId()
            system = try reader.requiredEnum("system", System.self)
        }
    }

    public struct Result: JSONRepresentable {
        public init() {}
        public var json: JSONValue { ["signedOut": true] }
    }
}
