/// Finish in-flight work and refuse new requests; `exit` then ends the process.
public enum Shutdown: RPCMethod {
    public static let name = "shutdown"
    public typealias Params = NoParams
    public typealias Result = JSONValue
}
