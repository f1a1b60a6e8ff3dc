/// The stable name of an error (`error.data.kind` on the wire) and its numeric JSON-RPC code.
///
/// Open like a string enum: WizardContract adds the wizard's kinds, and lists every kind the
/// server can return in `ErrorKind.all` so the contract test can compare it with Protocol/openrpc.json.
public struct ErrorKind: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let code: Int

    public init(_ name: String, code: Int) {
        self.name = name
        self.code = code
    }

    public var description: String { name }

    // JSON-RPC 2.0 and the LSP cancellation code.
    public static let parseError = ErrorKind("parseError", code: -32700)
    public static let invalidRequest = ErrorKind("invalidRequest", code: -32600)
    public static let messageTooLarge = ErrorKind("messageTooLarge", code: -32600)
    public static let methodNotFound = ErrorKind("methodNotFound", code: -32601)
    public static let invalidParams = ErrorKind("invalidParams", code: -32602)
    public static let internalError = ErrorKind("internalError", code: -32603)
    public static let cancelled = ErrorKind("cancelled", code: -32800)

    /// The server is shutting down (after `shutdown`).
    public static let serverShuttingDown = ErrorKind("serverShuttingDown", code: -32004)

    /// The kinds of JSON-RPC itself, in contract order; the wizard's follow in WizardContract.
    public static let base: [ErrorKind] = [
        .parseError, .invalidRequest, .messageTooLarge, .methodNotFound, .invalidParams,
        .internalError, .cancelled,
    ]
}
