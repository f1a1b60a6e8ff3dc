/// Finish in-flight work and refuse new requests; `exit` then ends the process.
public enum Shutdown: RPCMethod {
    public static let name = "shutdown"
    public typealias Params = NoParams
    public typealias Result = JSONValue
}

/// Ends the process (status 0 after `shutdown`, 1 without it, as in LSP).
public enum Exit: RPCNotification {
    public static let name = "exit"
    public typealias Params = NoParams
}
