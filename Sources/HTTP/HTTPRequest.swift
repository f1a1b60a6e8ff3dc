/// How a request authenticates. Every choice names one scheme: libcurl's CURLAUTH_ANY
/// picks Negotiate when a server offers both and does not fall back to NTLM.
public enum HTTPAuthentication: Sendable, Equatable {
    case none
    case basic(user: String, password: String)
    /// `user` may be a plain name or an e-mail address; with a `domain` libcurl sends `DOMAIN\user`.
    case ntlm(user: String, domain: String?, password: String)
    case negotiate(user: String, password: String)
    case bearer(token: String)
}

public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Deadline for the whole exchange, including a certificate lookup and a pinned retry.
    public var timeoutSeconds: Double
    /// A response body (or header block) larger than this ends the transfer with `responseTooLarge`.
    public var maxResponseBytes: Int
    public var authentication: HTTPAuthentication
    /// Off by default: callers such as Autodiscover decide themselves where to go next.
    public var followRedirects: Bool
    /// Lower-case hex SHA-256 digests of DER leaf certificates the user trusted for this host.
    public var pinnedCertificateSHA256: [String]
    /// HTTP/1.1 only: the legs of an NTLM or Negotiate handshake must share one connection.
    public var requireHTTP11: Bool = false

    public static let defaultMaxResponseBytes = 8 * 1024 * 1024

    public init(
        method: String = "GET",
        url: String,
        headers: HTTPHeaders = [:],
        body: [UInt8] = [],
        timeoutSeconds: Double = 30,
        maxResponseBytes: Int = HTTPRequest.defaultMaxResponseBytes,
        authentication: HTTPAuthentication = .none,
        followRedirects: Bool = false,
        pinnedCertificateSHA256: [String] = []
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutSeconds = timeoutSeconds
        self.maxResponseBytes = maxResponseBytes
        self.authentication = authentication
        self.followRedirects = followRedirects
        self.pinnedCertificateSHA256 = pinnedCertificateSHA256
    }
}

extension HTTPRequest {
    /// True when the request carries a secret that must only travel over TLS.
    var carriesCredentials: Bool {
        authentication != .none || headers.contains("Authorization")
            || headers.contains("Proxy-Authorization") || headers.contains("Cookie")
    }
}
