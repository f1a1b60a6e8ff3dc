import RPCCore

public enum CreateProfile: RPCMethod {
    public static let name = "createProfile"
    public static let maximumNameLength = 200

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["name"]
        public var name: String
        public init(name: String) { self.name = name }
        public init(reading reader: inout ParamsReader) throws(RPCError) {
            name = try reader.requiredNonEmptyString("name", maxLength: CreateProfile.maximumNameLength)
            guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw .invalidParams(field: "name", "'name' must not contain control characters.")
            }
        }
    }

    public typealias Result = Profile
}
