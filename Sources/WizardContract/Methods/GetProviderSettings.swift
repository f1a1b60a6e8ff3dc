import RPCCore

public enum GetProviderSettings: RPCMethod {
    public static let name = "getProviderSettings"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["system"]
        public var system: System?
        public init(reading reader: inout ParamsReader) throws(RPCError) {
            system = try reader.optionalEnum("system", System.self, among: System.signIns)
        }
    }

    public struct Result: JSONRepresentable {
        public var providers: [ProviderSettings]
        public init(providers: [ProviderSettings]) { self.providers = providers }
        public var json: JSONValue { ["providers": .array(providers.map(\.json))] }
    }
}
