import CCurlShim

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP connection was made (and closed again; nothing was sent).
public struct TCPProbeResult: Sendable, Equatable {
    public var remoteAddress: String
    public var remotePort: Int
    public var connectMs: Int
}

/// What one TLS handshake showed: the certificate as served (read over a handshake without
/// verification, nothing sent), and whether a verified handshake succeeds.
public struct TLSProbeResult: Sendable, Equatable {
    /// OpenSSL's name of the negotiated protocol, e.g. "TLSv1.3", and the cipher.
    public var protocolVersion: String?
    public var cipher: String?
    /// nil when the verified handshake succeeded, else libcurl's reason (expired, name mismatch, unknown issuer).
    public var verificationError: String?
    public var subject: String
    public var issuer: String
    public var subjectAltNames: [String]
    /// ISO 8601 (UTC) and seconds since 1970.
    public var notAfter: String
    public var notAfterEpoch: Int64
    public var sha256: String
    public var handshakeMs: Int

    public var verified: Bool { verificationError == nil }
}

/// Handshake-level probes for diagnosis, on the same libcurl multi thread, with the client's
/// CONNECT_TO, CA bundle and proxy settings, so they see the network the requests see.
public protocol ConnectionProbing: Sendable {
    func probeTCP(host: String, port: Int, timeoutSeconds: Double) async throws(HTTPError) -> TCPProbeResult
    func probeTLS(host: String, port: Int, timeoutSeconds: Double) async throws(HTTPError) -> TLSProbeResult
}

extension HTTPClient: ConnectionProbing {
    /// CONNECT_ONLY on an http URL: libcurl resolves and connects, then stops.
    public func probeTCP(host: String, port: Int, timeoutSeconds: Double) async throws(HTTPError) -> TCPProbeResult {
        let target = try RequestTarget(url: "http://\(Self.bracketed(host)):\(port)/")
        let result = try await perform(probeSpec(.tcpProbe, target, timeoutSeconds), target)
        switch result.code {
        case CURLE_OK:
            return TCPProbeResult(
                remoteAddress: result.connection.remoteAddress, remotePort: result.connection.remotePort, connectMs: result.connectMicros / 1000)
        case CURLE_OPERATION_TIMEDOUT: throw .timeout(host: host)
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT: throw .hostUnreachable(host: host, detail: result.detail)
        default: throw .transport(code: Int(result.code.rawValue), detail: result.detail)
        }
    }

    /// Two handshakes: one without verification that reads the certificate, then a verified
    /// one whose failure names what is wrong. A handshake that never completes throws
    /// `.timeout` (the TCP probe tells whether the connection itself was made).
    public func probeTLS(host: String, port: Int, timeoutSeconds: Double) async throws(HTTPError) -> TLSProbeResult {
        let target = try RequestTarget(url: "https://\(Self.bracketed(host)):\(port)/")
        let lookup = try await perform(probeSpec(.certificateLookup, target, timeoutSeconds), target)
        switch lookup.code {
        case CURLE_OK: break
        case CURLE_OPERATION_TIMEDOUT: throw .timeout(host: host)
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT: throw .hostUnreachable(host: host, detail: lookup.detail)
        default: throw .tlsFailure(host: host, detail: lookup.detail)
        }
        guard let certificate = ServerCertificate(certinfo: lookup.leafCertificate) else {
            throw .tlsFailure(host: host, detail: "the server sent no readable certificate")
        }
        let verified = try await perform(probeSpec(.tlsProbe, target, timeoutSeconds), target)
        let failure: String? =
            switch verified.code {
            case CURLE_OK: nil
            case CURLE_OPERATION_TIMEDOUT: throw .timeout(host: host)
            default: verified.detail
            }
        let parts = (lookup.tlsSummary ?? verified.tlsSummary)?.split(separator: "/").map { String($0).trimmingWhitespace() } ?? []
        return TLSProbeResult(
            protocolVersion: parts.first, cipher: parts.count > 1 ? parts[1] : nil, verificationError: failure,
            subject: certificate.subject, issuer: certificate.issuer, subjectAltNames: certificate.subjectAltNames,
            notAfter: certificate.notAfter, notAfterEpoch: certificate.notAfterEpoch, sha256: certificate.sha256,
            handshakeMs: max(0, lookup.tlsMicros - lookup.connectMicros) / 1000)
    }

    private func probeSpec(_ mode: TransferSpec.Mode, _ target: RequestTarget, _ timeoutSeconds: Double) throws(HTTPError) -> TransferSpec {
        let deadline = ContinuousClock.now + .milliseconds(Int(max(0.001, min(timeoutSeconds, 300)) * 1000))
        return TransferSpec(
            mode: mode, url: "\(target.scheme)://\(Self.bracketed(target.host)):\(target.port)/", scheme: target.scheme, method: "GET",
            headers: [:], body: [], timeoutMs: try remainingMs(deadline, target),
            connectTimeoutMs: try remainingMs(deadline, target), maxResponseBytes: 1, authentication: .none, followRedirects: false)
    }

    private static func bracketed(_ host: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }
}
