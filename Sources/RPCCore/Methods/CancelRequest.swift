/// Cancels an in-flight request; the request is answered with `-32800` (`cancelled`).
public enum CancelRequest: RPCNotification {
    public static let name = "$/cancelRequest"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["id"]
        public var id: JSONValue

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            guard let id = reader.rawValue("id") else {
                throw .invalidParams(field: "id", "The parameter 'id' is required.")
            }
            switch id {
            case .string, .number: self.id = id
            default: throw .invalidParams(field: "id", "'id' must be a string or a number.")
            }
        }
    }
}
