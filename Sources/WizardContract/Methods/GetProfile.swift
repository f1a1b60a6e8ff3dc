import RPCCore

public enum GetProfile: RPCMethod {
    public static let name = "getProfile"
    public typealias Params = ProfileIDParams
    public typealias Result = Profile
}
