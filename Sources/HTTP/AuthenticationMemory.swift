import Synchronization

/// What integrated authentication learned about an origin over this client's connections: the
/// scheme it accepted (chosen once per host, so a later request needs no unauthenticated probe),
/// the certificate it presented (Kerberos binds its AP-REQ to it before the request goes out),
/// and when a connection last authenticated (Windows authenticates the connection, so a request
/// on it needs no handshake while it lives). Per client: its connection pool is what it knows about.
public final class AuthenticationMemory: Sendable {
    public struct Entry: Sendable, Equatable {
        /// "kerberos" or "ntlm".
        public var scheme: String
        /// The Authorization label the handshake used ("NTLM", "Negotiate").
        public var label: String
        public var tlsServerEndPoint: [UInt8]?
        /// Monotonic seconds of the last authenticated answer.
        public var authenticatedAt: Double

        public init(scheme: String, label: String, tlsServerEndPoint: [UInt8]?, authenticatedAt: Double) {
            self.scheme = scheme
            self.label = label
            self.tlsServerEndPoint = tlsServerEndPoint
            self.authenticatedAt = authenticatedAt
        }
    }

    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    public subscript(key: String) -> Entry? {
        get { entries.withLock { $0[key] } }
        set {
            entries.withLock { known in
                if known.count > 256 { known.removeAll() } // a wizard talks to a handful of hosts
                known[key] = newValue
            }
        }
    }
}

extension HTTPTransport {
    /// None for transports that keep no connections.
    public var authenticationMemory: AuthenticationMemory? { nil }
}
