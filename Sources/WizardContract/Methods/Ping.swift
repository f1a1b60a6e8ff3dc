import RPCCore

/// A no-op round trip: liveness checks and latency measurements.
public enum Ping: RPCMethod {
    public static let name = "ping"
    public typealias Params = NoParams

    public struct Result: JSONRepresentable {
        public init() {}
        public var json: JSONValue { .object(JSONObject()) }
    }
}
