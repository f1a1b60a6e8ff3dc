import RPCCore

public enum ListProfiles: RPCMethod {
    public static let name = "listProfiles"
    public typealias Params = NoParams

    public struct Result: JSONRepresentable {
        public var profiles: [Profile]
        public init(profiles: [Profile]) { self.profiles = profiles }
        public var json: JSONValue { ["profiles": .array(profiles.map(\.json))] }
    }
}
