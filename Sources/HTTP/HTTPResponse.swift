/// A completed exchange. Any status, 401 and 500 included, is a response, not an error.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// The URL of the last request made (differs from the request's only after a redirect).
    public var effectiveURL: String
    /// Wall time of the whole `send`, including any certificate lookup and pinned retry.
    public var durationMs: Int
    /// The connection the (last) request went over.
    public var connection: HTTPConnectionInfo

    public init(
        status: Int, headers: HTTPHeaders, body: [UInt8], effectiveURL: String, durationMs: Int,
        connection: HTTPConnectionInfo = HTTPConnectionInfo()
    ) {
        self.connection = connection
        self.status = status
        self.headers = headers
        self.body = body
        self.effectiveURL = effectiveURL
        self.durationMs = durationMs
    }

    /// The body decoded as UTF-8 (invalid sequences repaired).
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// Which connection a response came over: integrated authentication checks that every leg of a
/// handshake reused the first leg's connection, whose certificate the channel binding names.
public struct HTTPConnectionInfo: Sendable, Equatable {
    /// CURLINFO_LOCAL_PORT and CURLINFO_PRIMARY_IP / _PORT.
    public var localPort: Int
    public var remoteAddress: String
    public var remotePort: Int
    /// CURLINFO_NUM_CONNECTS: 0 when the request reused a connection.
    public var newConnections: Int
    /// RFC 5929 tls-server-end-point hash of the server's leaf certificate on this connection
    /// (verified https only; HTTPClient remembers it for reused connections).
    public var tlsServerEndPoint: [UInt8]?

    public init(
        localPort: Int = 0, remoteAddress: String = "", remotePort: Int = 0, newConnections: Int = 0,
        tlsServerEndPoint: [UInt8]? = nil
    ) {
        self.localPort = localPort
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
        self.newConnections = newConnections
        self.tlsServerEndPoint = tlsServerEndPoint
    }

    /// Same TCP connection: same local port to the same peer, and no new connect.
    public func isSameConnection(as other: HTTPConnectionInfo) -> Bool {
        newConnections == 0 && localPort == other.localPort && localPort != 0
            && remoteAddress == other.remoteAddress && remotePort == other.remotePort
    }
}
