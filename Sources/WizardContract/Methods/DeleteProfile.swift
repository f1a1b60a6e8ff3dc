import RPCCore

/// Deletes the profile file and every keyring secret of the profile.
public enum DeleteProfile: RPCMethod {
    public static let name = "deleteProfile"
    public typealias Params = ProfileIDParams

    public struct Result: JSONRepresentable {
        public init() {}
        public var json: JSONValue { ["deleted": true] }
    }
}
