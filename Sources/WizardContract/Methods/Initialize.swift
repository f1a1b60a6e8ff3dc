import RPCCore

public enum Initialize: RPCMethod {
    public static let name = "initialize"
    public static let protocolVersion = "1.0"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["clientInfo", "protocolVersion"]
        public var clientName: String?
        public var clientVersion: String?
        public var protocolVersion: String?

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            let info = try reader.optionalObject("clientInfo")
            clientName = info?["name"]?.stringValue
            clientVersion = info?["version"]?.stringValue
            protocolVersion = try reader.optionalString("protocolVersion", maxLength: 64)
        }

        /// Unlike other methods, extra fields are tolerated: LSP-style clients send
        /// `capabilities`, `processId`, `trace` and the like.
        public static func decodeLeniently(_ params: JSONValue?) throws(RPCError) -> Params {
            var reader = try ParamsReader(params, allowsUnknown: true)
            let decoded = try Params(reading: &reader)
            try reader.finish()
            return decoded
        }
    }

    public struct Result: JSONRepresentable {
        public var serverName: String
        public var serverVersion: String
        public var capabilities: JSONObject

        public init(serverName: String, serverVersion: String, capabilities: JSONObject) {
            self.serverName = serverName
            self.serverVersion = serverVersion
            self.capabilities = capabilities
        }

        public var json: JSONValue {
            [
                "serverInfo": ["name": .string(serverName), "version": .string(serverVersion)],
                "protocolVersion": .string(Initialize.protocolVersion),
                "capabilities": .object(capabilities),
            ]
        }
    }
}
