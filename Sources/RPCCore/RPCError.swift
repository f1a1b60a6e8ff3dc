/// The one error type of the protocol: a kind, one sentence for a person, an optional hint,
/// and structured details that travel in `error.data` next to `kind` and `hint`.
///
/// Messages and details must never carry a secret; errors are built where a failure arises
/// (libsecret, libcurl, HTTP), with the secret-free facts only.
public struct RPCError: Error, Sendable, Equatable, JSONRepresentable, CustomStringConvertible {
    public var kind: ErrorKind
    public var message: String
    public var hint: String?
    public var details: JSONObject

    public init(_ kind: ErrorKind, _ message: String, hint: String? = nil, details: JSONObject = JSONObject()) {
        self.kind = kind
        self.message = message
        self.hint = hint
        self.details = details
    }

    public var code: Int { kind.code }
    public var description: String { "\(kind.name): \(message)" }

    public var data: JSONValue {
        var data = JSONObject()
        data.append("kind", .string(kind.name))
        if let hint { data.append("hint", .string(hint)) }
        for member in details.members { data[member.key] = member.value }
        return .object(data)
    }

    public var json: JSONValue {
        ["code": .int(code), "message": .string(message), "data": data]
    }

    public func with(_ key: String, _ value: JSONValue) -> RPCError {
        var copy = self
        copy.details[key] = value
        return copy
    }
}

extension RPCError {
    public static func invalidParams(field: String, _ message: String, hint: String? = nil) -> RPCError {
        RPCError(.invalidParams, message, hint: hint, details: JSONObject([("field", .string(field))]))
    }

    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(
            .methodNotFound, "There is no method named '\(method)'.",
            hint: "Call rpc.discover for the list of methods.",
            details: JSONObject([("method", .string(method))]))
    }

    public static func internalError(_ message: String) -> RPCError {
        RPCError(.internalError, message)
    }

    public static let cancelled = RPCError(.cancelled, "The request was cancelled.")
}
