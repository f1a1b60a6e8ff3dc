/// Why a `send` produced no response. Messages name hosts and libcurl's reason, never
/// credentials, header values, URLs' queries or bodies.
public enum HTTPError: Error, Sendable, Equatable {
    /// TLS verification failed; the server's leaf certificate, so a person can decide to trust it.
    /// `sha256` is lower-case hex of the DER certificate, `notAfter` is ISO 8601 (UTC).
    case certificateUntrusted(host: String, sha256: String, subject: String, issuer: String, notAfter: String, pem: String)
    /// DNS failure, connection refused, no route.
    case hostUnreachable(host: String, detail: String)
    /// The request's deadline passed.
    case timeout(host: String)
    case responseTooLarge(limit: Int)
    case cancelled
    /// A TLS failure that is not about trusting the certificate (handshake, protocol version).
    case tlsFailure(host: String, detail: String)
    /// Credentials (authentication or an Authorization header) on a URL that is not https.
    case insecureCredentials(host: String)
    /// Not an absolute http(s) URL, a URL with user info, or a header with a line break.
    case invalidRequest(reason: String)
    /// The client could not be set up (e.g. an unreadable CA file).
    case invalidConfiguration(reason: String)
    /// Any other libcurl failure (reset connection, empty reply, ...).
    case transport(code: Int, detail: String)
}

extension HTTPError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .certificateUntrusted(let host, let sha256, let subject, _, let notAfter, _):
            "The certificate of \(host) is not trusted (subject \(subject), SHA-256 \(sha256), valid until \(notAfter))."
        case .hostUnreachable(let host, let detail):
            "Cannot reach \(host): \(detail)"
        case .timeout(let host):
            "\(host) did not answer in time."
        case .responseTooLarge(let limit):
            "The response is larger than \(limit) bytes."
        case .cancelled:
            "The request was cancelled."
        case .tlsFailure(let host, let detail):
            "The secure connection to \(host) failed: \(detail)"
        case .insecureCredentials(let host):
            "Refusing to send credentials to \(host) without https."
        case .invalidRequest(let reason):
            "Invalid request: \(reason)"
        case .invalidConfiguration(let reason):
            "Invalid HTTP client configuration: \(reason)"
        case .transport(let code, let detail):
            "The connection failed (libcurl \(code)): \(detail)"
        }
    }
}
