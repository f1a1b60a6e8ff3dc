/// Ends the process with status 0 once running requests are answered.
public enum Exit: RPCNotification {
    public static let name = "exit"
    public typealias Params = NoParams
}
