import HTTP
import RPCCore
import WizardContract

extension HTTPError {
    /// libcurl failures become the contract's kinds here, once.
    public var rpcError: RPCError {
        switch self {
        case .certificateUntrusted(let host, let sha256, let subject, let issuer, let notAfter, let pem):
            return RPCError(
                .certificateUntrusted, "The certificate of \(host) is not trusted.",
                hint:
                    "Check the certificate (its SHA-256 fingerprint is \(sha256)); if it is the right one, call trustCertificate with this host and fingerprint, or start syncwizard with --ca-file for your company's CA.",
                details: JSONObject([
                    ("host", .string(host)), ("sha256", .string(sha256)), ("subject", .string(subject)),
                    ("issuer", .string(issuer)), ("notAfter", .string(notAfter)), ("pem", .string(pem)),
                ]))
        case .hostUnreachable(let host, let detail):
            return RPCError(
                .hostUnreachable, "Cannot reach \(host): \(detail).",
                hint: "Check the host name, the network and any proxy (https_proxy).",
                details: JSONObject([("host", .string(host))]))
        case .timeout(let host):
            return RPCError(.timeout, "\(host) did not answer in time.", details: JSONObject([("host", .string(host))]))
        case .responseTooLarge(let limit):
            return RPCError(
                .serverError, "The server sent more than \(limit) bytes; syncwizard stopped reading.",
                details: JSONObject([("limitBytes", .int(limit))]))
        case .cancelled:
            return .cancelled
        case .tlsFailure(let host, let detail):
            return RPCError(.hostUnreachable, "The secure connection to \(host) failed: \(detail).", details: JSONObject([("host", .string(host))]))
        case .insecureCredentials(let host):
            return RPCError(
                .endpointInvalid, "Refusing to send credentials to \(host) without https.",
                details: JSONObject([("host", .string(host))]))
        case .invalidRequest(let reason):
            return RPCError(.endpointInvalid, "The URL cannot be used: \(reason).")
        case .invalidConfiguration(let reason):
            return RPCError(.internalError, "The HTTP client is misconfigured: \(reason).")
        case .transport(_, let detail):
            return RPCError(.hostUnreachable, "The connection failed: \(detail).")
        }
    }

    /// A short stable word for attempt logs.
    public var outcome: String {
        switch self {
        case .certificateUntrusted: "certificateUntrusted"
        case .hostUnreachable, .tlsFailure, .transport: "unreachable"
        case .timeout: "timeout"
        case .responseTooLarge: "tooLarge"
        case .cancelled: "abandoned"
        case .insecureCredentials, .invalidRequest: "rejected"
        case .invalidConfiguration: "rejected"
        }
    }
}

/// Monotonic milliseconds for durations in reports.
public struct Stopwatch: Sendable {
    private let start = ContinuousClock.now
    public init() {}
    public var elapsedMs: Int {
        let d = ContinuousClock.now - start
        return Int(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }
    public var elapsedSeconds: Double { Double(elapsedMs) / 1000 }
}

/// Reports progress of a long request (Autodiscover, tests) to whoever listens.
public typealias ProgressReporter = @Sendable (_ stage: String, _ message: String, _ percent: Int?) -> Void
