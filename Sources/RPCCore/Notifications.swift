/// The server → client notification every long request may send.
public enum ProgressNotification {
    public static let name = "progress"

    public static func params(requestId: JSONValue, stage: String, message: String, percent: Int? = nil) -> JSONValue {
        var o = JSONObject([("requestId", requestId), ("stage", .string(stage)), ("message", .string(message))])
        if let percent { o.append("percent", .int(percent)) }
        return .object(o)
    }
}
