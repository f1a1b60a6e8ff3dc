import RPCCore

/// What a handler can do besides returning: report progress on its request.
public struct RequestContext: Sendable {
    public let id: JSONValue
    let output: OutputChannel?

    public init(id: JSONValue, output: OutputChannel?) {
        self.id = id
        self.output = output
    }

    /// Sends a `progress` notification tied to this request.
    public func progress(stage: String, message: String, percent: Int? = nil) {
        output?.sendNotification(
            method: ProgressNotification.name,
            params: ProgressNotification.params(requestId: id, stage: stage, message: message, percent: percent))
    }

    /// Sends any server → client notification.
    public func notify(method: String, params: JSONValue) {
        output?.sendNotification(method: method, params: params)
    }
}

public enum MethodHandler: Sendable {
    /// Quick, non-blocking work answered on the reader thread without a task hop.
    case inline(@Sendable (JSONValue?) throws(RPCError) -> JSONValue)
    /// Anything that waits (disk, keyring, network) runs as its own task.
    case async(@Sendable (JSONValue?, RequestContext) async throws -> JSONValue)
}

/// The server's methods by wire name. Built once at start-up, then read-only.
public struct MethodTable: Sendable {
    public private(set) var requests: [String: MethodHandler] = [:]
    public private(set) var notifications: [String: @Sendable (JSONValue?) -> Void] = [:]

    public init() {}

    public var requestNames: [String] { requests.keys.sorted() }

    public mutating func register<M: RPCMethod>(_ method: M.Type, _ body: @escaping @Sendable (M.Params, RequestContext) async throws -> M.Result) {
        requests[M.name] = .async { params, context in
            let decoded = try M.Params.decode(params)
            return try await body(decoded, context).json
        }
    }

    public mutating func registerInline<M: RPCMethod>(_ method: M.Type, _ body: @escaping @Sendable (M.Params) throws(RPCError) -> M.Result) {
        requests[M.name] = .inline { (params) throws(RPCError) -> JSONValue in
            let decoded = try M.Params.decode(params)
            return try body(decoded).json
        }
    }

    public mutating func registerRaw(_ name: String, _ handler: MethodHandler) {
        requests[name] = handler
    }

    public mutating func registerNotification(_ name: String, _ body: @escaping @Sendable (JSONValue?) -> Void) {
        notifications[name] = body
    }
}
