import CCurlShim
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// An HTTP(S) client on libcurl. Many requests may be in flight at once; all of them run on
/// one curl multi handle driven by one dedicated thread (see `CurlDriver`).
public final class HTTPClient: Sendable {
    public let configuration: Configuration
    /// Schemes and certificates per origin, for IntegratedAuth (see AuthenticationMemory).
    public let authenticationMemory: AuthenticationMemory? = AuthenticationMemory()
    private let caBundle: CABundle?
    private let driver: CurlDriver
    /// tls-server-end-point of each live connection ("localPort remoteAddress remotePort"),
    /// recorded when a transfer opened it: a reused connection reports no certificate itself.
    private let certificates = Mutex<[String: [UInt8]]>([:])

    public init(configuration: Configuration = Configuration()) throws(HTTPError) {
        try configuration.validate()
        try loadCurl() // the first use of libcurl in the process maps it (and fails here without it)
        self.configuration = configuration
        caBundle = try configuration.caFile.map { path throws(HTTPError) in try CABundle(extraFile: path) }
        driver = try CurlDriver()
    }

    deinit {
        driver.stop()
    }

    /// Performs `request`. Every HTTP status is a response; only transport problems throw.
    /// Cancelling the calling task aborts the transfer and throws `.cancelled`.
    public func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + .seconds(min(max(0, request.timeoutSeconds), 86_400))
        let target = try RequestTarget(url: request.url)
        try validate(request, target)

        var result = try await perform(spec(for: request, target, mode: .verified, deadline: deadline), target)
        // Verification failed: fetch the leaf without sending anything. If the user pinned it
        // for this request, repeat with peer verification off but its public key pinned
        // (CURLOPT_PINNEDPUBLICKEY), the only path where VERIFYPEER is 0. Otherwise report it.
        if Self.isCertificateFailure(result.code) {
            let certificate = try await lookUpCertificate(target, deadline: deadline, original: result)
            guard request.pinnedCertificateSHA256.contains(where: certificate.matches(pin:)) else {
                throw .certificateUntrusted(
                    host: target.host, sha256: certificate.sha256, subject: certificate.subject,
                    issuer: certificate.issuer, notAfter: certificate.notAfter, pem: certificate.pem)
            }
            let pin = "sha256//" + certificate.publicKeySHA256Base64
            result = try await perform(spec(for: request, target, mode: .pinned(publicKeyPin: pin), deadline: deadline), target)
        }
        try Self.throwIfFailed(result, target, request)
        result.connection.tlsServerEndPoint = rememberCertificate(of: result.connection)
        return HTTPResponse(
            status: result.status, headers: result.headers, body: result.body,
            effectiveURL: result.effectiveURL, durationMs: (clock.now - start).wholeMilliseconds,
            connection: result.connection)
    }

    // MARK: Steps

    private func rememberCertificate(of connection: HTTPConnectionInfo) -> [UInt8]? {
        guard connection.localPort != 0 else { return nil }
        let key = "\(connection.localPort) \(connection.remoteAddress) \(connection.remotePort)"
        return certificates.withLock { known in
            guard connection.newConnections > 0 else { return known[key] }
            if known.count > 512 { known.removeAll() } // ports are reused; only live connections matter
            known[key] = connection.tlsServerEndPoint
            return connection.tlsServerEndPoint
        }
    }

    private func validate(_ request: HTTPRequest, _ target: RequestTarget) throws(HTTPError) {
        if request.carriesCredentials && target.scheme != "https" {
            throw .insecureCredentials(host: target.host)
        }
        let method = request.method.uppercased()
        guard !method.isEmpty, method.unicodeScalars.allSatisfy({ ("A"..."Z").contains($0) || $0 == "-" }) else {
            throw .invalidRequest(reason: "the method is not a valid token")
        }
        for field in request.headers {
            guard !field.name.isEmpty, !field.name.contains(":"), !field.name.containsControlCharacter,
                !field.value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" })
            else {
                throw .invalidRequest(reason: "header \"\(field.name.filter { !$0.isNewline })\" is malformed")
            }
        }
        guard request.maxResponseBytes > 0 else {
            throw .invalidRequest(reason: "maxResponseBytes must be positive")
        }
    }

    /// A verification failure: read the leaf certificate over a handshake-only connection.
    private func lookUpCertificate(
        _ target: RequestTarget, deadline: ContinuousClock.Instant, original: TransferResult
    ) async throws(HTTPError) -> ServerCertificate {
        let lookup = TransferSpec(
            mode: .certificateLookup, url: target.origin, scheme: target.scheme, method: "GET",
            headers: [:], body: [], timeoutMs: try remainingMs(deadline, target),
            connectTimeoutMs: try connectTimeoutMs(deadline, target), maxResponseBytes: 1,
            authentication: .none, followRedirects: false)
        let result = try await perform(lookup, target)
        if result.code == CURLE_OPERATION_TIMEDOUT { throw .timeout(host: target.host) }
        guard result.code == CURLE_OK, let certificate = ServerCertificate(certinfo: result.leafCertificate) else {
            // The server is not trusted either way; without its certificate report the first failure.
            throw .tlsFailure(host: target.host, detail: original.detail)
        }
        return certificate
    }

    private func spec(
        for request: HTTPRequest, _ target: RequestTarget, mode: TransferSpec.Mode, deadline: ContinuousClock.Instant
    ) throws(HTTPError) -> TransferSpec {
        TransferSpec(
            mode: mode, url: request.url, scheme: target.scheme, method: request.method,
            headers: request.headers, body: request.body,
            timeoutMs: try remainingMs(deadline, target), connectTimeoutMs: try connectTimeoutMs(deadline, target),
            maxResponseBytes: request.maxResponseBytes, authentication: request.authentication,
            followRedirects: request.followRedirects,
            requireHTTP11: request.requireHTTP11)
    }

    func remainingMs(_ deadline: ContinuousClock.Instant, _ target: RequestTarget) throws(HTTPError) -> Int {
        let ms = ContinuousClock.now.duration(to: deadline).wholeMilliseconds
        guard ms > 0 else { throw .timeout(host: target.host) }
        return ms
    }

    func connectTimeoutMs(_ deadline: ContinuousClock.Instant, _ target: RequestTarget) throws(HTTPError) -> Int {
        min(try remainingMs(deadline, target), max(1, Int(configuration.connectTimeoutSeconds * 1000)))
    }

    /// Runs one transfer on the driver thread; task cancellation removes it from the multi handle.
    func perform(_ spec: TransferSpec, _ target: RequestTarget) async throws(HTTPError) -> TransferResult {
        if Task.isCancelled { throw .cancelled }
        let transfer = try CurlTransfer(spec: spec, configuration: configuration, caBundle: caBundle)
        let driver = self.driver
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                transfer.attach(continuation)
                driver.submit(transfer)
            }
        } onCancel: {
            transfer.markCancelled()
            driver.cancel(transfer)
        }
        if result.cancelled { throw .cancelled }
        return result
    }

    // MARK: libcurl results -> HTTPError (the one place they are converted)

    static func isCertificateFailure(_ code: CURLcode) -> Bool {
        code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_ISSUER_ERROR
    }

    private static func throwIfFailed(_ result: TransferResult, _ target: RequestTarget, _ request: HTTPRequest) throws(HTTPError) {
        let host = target.host
        switch result.code {
        case CURLE_OK:
            return
        case CURLE_WRITE_ERROR where result.exceededLimit:
            throw .responseTooLarge(limit: request.maxResponseBytes)
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT:
            throw .hostUnreachable(host: host, detail: result.detail)
        case CURLE_OPERATION_TIMEDOUT:
            throw .timeout(host: host)
        case CURLE_SSL_CONNECT_ERROR where [Int(ECONNRESET), Int(EPIPE)].contains(result.osErrno):
            // The peer dropped the connection during the handshake: the network, not TLS.
            throw .transport(code: Int(result.code.rawValue), detail: result.detail)
        case CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_USE_SSL_FAILED,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS,
            CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
            CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_CLIENTCERT,
            CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_ISSUER_ERROR:
            throw .tlsFailure(host: host, detail: result.detail)
        default:
            throw .transport(code: Int(result.code.rawValue), detail: result.detail)
        }
    }
}

extension Duration {
    var wholeMilliseconds: Int {
        Int(components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000)
    }
}
