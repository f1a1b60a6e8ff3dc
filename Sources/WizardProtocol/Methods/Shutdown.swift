/// Finish in-flight work and refuse new requests; `exit` then ends the process.
public enum Shutdown: RPCMethod {
    public static let name = "shutdown"
    public typealias Params = NoParams
    public typealias Result = JSONValue
}

/// Ends the process with status 0 once running requests are answered.
public enum Exit: RPCNotification {
    public static let name = "exit"
    public typealias Params = NoParams
}
