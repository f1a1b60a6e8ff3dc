import DNS
import HTTP
import OAuth
import RPCCore
import SuperOfficeConnector
import Threading
import WizardContract

/// The network pieces connectors use, built on first use so that start-up (and every request
/// that never touches the network) does not pay for libcurl and OpenSSL initialisation.
public final class Network: Sendable {
    public struct Options: Sendable {
        public var caFile: String?
        public var connectTo: [String]
        public var dnsServer: String?
        public var autodiscoverBudgetSeconds: Double
        public var userAgent: String
        public var superOfficeHosts: [SuperOfficeEnvironment: String]
        /// How long one diagnosis step may wait for a server (DNS, TCP, TLS, one request).
        public var diagnosisStepTimeoutSeconds: Double

        public init(
            caFile: String? = nil, connectTo: [String] = [], dnsServer: String? = nil,
            autodiscoverBudgetSeconds: Double = 15, userAgent: String = "syncwizard",
            superOfficeHosts: [SuperOfficeEnvironment: String] = SuperOffice.defaultHosts,
            diagnosisStepTimeoutSeconds: Double = 10
        ) {
            self.diagnosisStepTimeoutSeconds = diagnosisStepTimeoutSeconds
            self.superOfficeHosts = superOfficeHosts
            self.caFile = caFile
            self.connectTo = connectTo
            self.dnsServer = dnsServer
            self.autodiscoverBudgetSeconds = autodiscoverBudgetSeconds
            self.userAgent = userAgent
        }
    }

    public let options: Options
    /// A transport given by a test (in-process connector tests); nil means libcurl.
    private let transport: (any HTTPTransport)?
    private let client = MutexBox<HTTPClient?>(nil)
    private let srv = MutexBox<SRVResolver?>(nil)
    private let keys = MutexBox<KeySetCache?>(nil)

    /// Provider signing keys, shared by every sign-in.
    public func keySets() throws(RPCError) -> KeySetCache {
        let http = try self.http()
        return keys.withLock { existing in
            if let existing { return existing }
            let made = KeySetCache(http: http)
            existing = made
            return made
        }
    }

    public init(options: Options, transport: (any HTTPTransport)? = nil) {
        self.options = options
        self.transport = transport
    }

    public func http() throws(RPCError) -> any HTTPTransport {
        if let transport { return transport }
        let options = self.options
        let made: Result<HTTPClient, HTTPError> = client.withLock { existing in
            if let existing { return .success(existing) }
            do throws(HTTPError) {
                let made = try HTTPClient(configuration: .init(caFile: options.caFile, connectTo: options.connectTo, userAgent: options.userAgent))
                existing = made
                return .success(made)
            } catch {
                return .failure(error)
            }
        }
        switch made {
        case .success(let c): return c
        case .failure(let e): throw RPCError(.internalError, "The HTTP client cannot start: \(e).")
        }
    }

    /// Handshake probes for diagnosis: the libcurl client itself (nil with a test's transport).
    public func prober() throws(RPCError) -> (any ConnectionProbing)? {
        guard transport == nil else { return nil }
        return try http() as? HTTPClient
    }

    /// Hosts (lower case) that a --connect-to entry sends elsewhere.
    public var redirectedHosts: Set<String> {
        Set(options.connectTo.compactMap { $0.split(separator: ":", omittingEmptySubsequences: false).first.map { $0.lowercased() } })
    }

    public var resolver: SRVResolver {
        let server = options.dnsServer
        return srv.withLock { existing in
            if let existing { return existing }
            let made = SRVResolver(server: server)
            existing = made
            return made
        }
    }
}
