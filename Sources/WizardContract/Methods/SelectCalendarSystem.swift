import RPCCore

public enum SelectCalendarSystem: RPCMethod {
    public static let name = "selectCalendarSystem"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["profileId", "system"]
        public var profileId: String
        public var system: System
        public init(reading reader: inout ParamsReader) throws(RPCError) {
            profileId = try reader.profileId()
            system = try reader.requiredEnum("system", System.self, among: System.calendars)
        }
    }

    public typealias Result = Profile
}
