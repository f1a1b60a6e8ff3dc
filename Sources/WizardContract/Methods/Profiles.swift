import RPCCore

public struct ProfileIDParams: RPCParams, Equatable {
    public static let parameterNames = ["profileId"]
    public var profileId: String
    public init(profileId: String) { self.profileId = profileId }
    public init(reading reader: inout ParamsReader) throws(RPCError) {
        profileId = try reader.profileId()
    }
}
