import RPCCore

/// Server → client notifications of the sign-ins.
public enum SignInCompletedNotification {
    public static let name = "signInCompleted"
}

public enum SignInFailedNotification {
    public static let name = "signInFailed"
}
