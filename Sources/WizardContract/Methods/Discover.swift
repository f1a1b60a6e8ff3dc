import RPCCore

/// Returns the OpenRPC document (the same content as Protocol/openrpc.json).
public enum Discover: RPCMethod {
    public static let name = "rpc.discover"
    public typealias Params = NoParams
    public typealias Result = JSONValue
}
