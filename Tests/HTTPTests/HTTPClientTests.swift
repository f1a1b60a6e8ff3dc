import Foundation
import Testing

@testable import HTTP

/// Real TLS on loopback: every host name is routed with CONNECT_TO, and certificates are
/// verified against that name. Needs python3 with trustme (see Support/tls_server.py).
@Suite struct HTTPClientTests {
    let server: TestServer
    let client: HTTPClient

    init() throws {
        server = try TestServer.shared()
        client = try HTTPClient(configuration: .init(caFile: server.ports.caFile, connectTo: server.connectTo))
    }

    /// The error `send` threw, or nil when it returned a response.
    func failure(of request: HTTPRequest) async -> HTTPError? {
        do {
            _ = try await client.send(request)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Responses

    @Test func plainGetReturnsStatusBodyAndHeaders() async throws {
        let response = try await client.send(HTTPRequest(url: server.trustedURL("/hello")))
        #expect(response.status == 200)
        #expect(response.text == "hello from trusted")
        #expect(response.headers["x-server"] == "trusted")
        #expect(response.headers["CONTENT-TYPE"] == "text/plain")
        #expect(response.effectiveURL == server.trustedURL("/hello"))
        #expect(response.durationMs >= 0)
    }

    @Test func postSendsBodyAndMethod() async throws {
        let body = Array("{\"a\":1}".utf8)
        let response = try await client.send(
            HTTPRequest(
                method: "POST", url: server.trustedURL("/echo"),
                headers: ["Content-Type": "application/json"], body: body))
        #expect(response.body == body)
        #expect(response.headers["X-Method"] == "POST")

        let put = try await client.send(HTTPRequest(method: "PUT", url: server.trustedURL("/echo"), body: [1, 2, 3]))
        #expect(put.body == [1, 2, 3])
        #expect(put.headers["X-Method"] == "PUT")
    }

    @Test func defaultUserAgentIsSent() async throws {
        let response = try await client.send(HTTPRequest(url: server.trustedURL("/headers")))
        let fields = try JSONDecoder().decode([[String]].self, from: Data(response.body))
        #expect(fields.contains(["User-Agent", "syncwizard/0.1.0"]))
    }

    @Test func unauthorizedIsAResponseWithEveryChallenge() async throws {
        let response = try await client.send(HTTPRequest(url: server.trustedURL("/challenge")))
        #expect(response.status == 401)
        #expect(response.headers.values(for: "www-authenticate") == ["Negotiate", "NTLM"])
    }

    @Test func redirectsAreReturnedNotFollowedByDefault() async throws {
        let response = try await client.send(HTTPRequest(url: server.trustedURL("/redirect")))
        #expect(response.status == 302)
        #expect(response.headers["Location"] == "/hello")

        let followed = try await client.send(HTTPRequest(url: server.trustedURL("/redirect"), followRedirects: true))
        #expect(followed.status == 200)
        #expect(followed.effectiveURL == server.trustedURL("/hello"))
    }

    @Test func fiftyParallelRequestsRunConcurrently() async throws {
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    try await client.send(HTTPRequest(url: server.trustedURL("/delay?ms=300"))).status
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 200, count: 50))
        // Concurrency seen from the server: many /delay requests were in its hands at once
        // (serially it would only ever see one). Counted, not timed, so a busy machine cannot fail it.
        let stats = try await server.stats(using: client)
        #expect(stats.maxConcurrentDelays >= 10, "at most \(stats.maxConcurrentDelays) requests overlapped")
    }

    // MARK: Transport failures

    @Test func silentServerHitsTheDeadline() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let error = await failure(of: HTTPRequest(url: "https://silent.contoso.test/", timeoutSeconds: 1))
        #expect(error == .timeout(host: "silent.contoso.test"))
        // The 1 s deadline, not the default 30 s one, ended it (loose: machines are noisy).
        #expect(clock.now - started < .seconds(25))
    }

    @Test func connectionResetAfterTheRequestIsATransportError() async throws {
        let error = await failure(of: HTTPRequest(url: server.trustedURL("/reset"), timeoutSeconds: 5))
        guard case .transport(let code, _) = error else {
            Issue.record("expected a transport error, got \(String(describing: error))")
            return
        }
        #expect(code == 56 || code == 52) // RECV_ERROR or GOT_NOTHING
    }

    @Test func connectionResetOnAcceptFailsFast() async throws {
        let error = await failure(of: HTTPRequest(url: "https://reset.contoso.test/", timeoutSeconds: 5))
        switch error {
        case .hostUnreachable(let host, _): #expect(host == "reset.contoso.test")
        case .transport: break
        default: Issue.record("expected hostUnreachable or transport, got \(String(describing: error))")
        }
    }

    @Test func refusedConnectionIsHostUnreachable() async throws {
        let error = await failure(of: HTTPRequest(url: "https://refused.contoso.test/", timeoutSeconds: 5))
        guard case .hostUnreachable(let host, let detail) = error else {
            Issue.record("expected hostUnreachable, got \(String(describing: error))")
            return
        }
        #expect(host == "refused.contoso.test")
        #expect(!detail.isEmpty)
    }

    @Test func oversizeBodyIsRefused() async throws {
        let limit = 1024 * 1024
        let error = await failure(of: HTTPRequest(url: server.trustedURL("/bytes?n=\(2 * limit)"), maxResponseBytes: limit))
        #expect(error == .responseTooLarge(limit: limit))

        let exact = try await client.send(HTTPRequest(url: server.trustedURL("/bytes?n=\(limit)"), maxResponseBytes: limit))
        #expect(exact.body.count == limit)
    }

    @Test func cancellingTheTaskEndsAHangingRequestPromptly() async throws {
        let clock = ContinuousClock()
        let request = HTTPRequest(url: server.trustedURL("/hang"), timeoutSeconds: 30)
        let task = Task { await failure(of: request) }
        try await Task.sleep(for: .milliseconds(300))
        let cancelled = clock.now
        task.cancel()
        let error = await task.value
        #expect(error == .cancelled)
        #expect(clock.now - cancelled < .seconds(25)) // about 10 ms when idle; the 60 s server delay is what it must beat
    }

    @Test func alreadyCancelledTaskSendsNothing() async throws {
        let request = HTTPRequest(url: server.trustedURL("/hello"))
        let task = Task { () -> HTTPError? in
            withUnsafeCurrentTask { $0?.cancel() }
            return await failure(of: request)
        }
        #expect(await task.value == .cancelled)
    }

    // MARK: Certificates

    @Test func untrustedCertificateIsReportedWithItsDetails() async throws {
        let path = "/probe-\(UUID().uuidString)"
        let error = await failure(of: HTTPRequest(url: server.untrustedURL(path)))
        guard case .certificateUntrusted(let host, let sha256, let subject, let issuer, let notAfter, let pem) = error else {
            Issue.record("expected certificateUntrusted, got \(String(describing: error))")
            return
        }
        #expect(host == TestServer.untrustedHost)
        #expect(sha256 == server.ports.untrustedSHA256)
        #expect(subject.contains("CN=untrusted.contoso.test") || subject.contains("CN = untrusted.contoso.test"))
        #expect(issuer.contains("untrusted test CA"))
        #expect(notAfter == "3000-01-01T00:00:00Z")
        #expect(pem.hasPrefix("-----BEGIN CERTIFICATE-----"))
        #expect(Self.der(ofPEM: pem) == Data(base64Encoded: server.ports.untrustedDER))

        // Neither the failed attempt nor the certificate lookup sent an HTTP request.
        let stats = try await server.stats(using: client)
        #expect(!(stats.paths["untrusted"] ?? []).contains(path))
    }

    @Test func pinnedCertificateIsAccepted() async throws {
        let response = try await client.send(
            HTTPRequest(
                url: server.untrustedURL("/hello"), pinnedCertificateSHA256: [server.ports.untrustedSHA256]))
        #expect(response.status == 200)
        #expect(response.text == "hello from untrusted")
    }

    /// TLS session resumption across requests (the process-wide session share): the server closes
    /// each connection, the next request's new connection resumes, and CERTINFO still names the
    /// server's certificate, so the channel binding of a resumed connection is right.
    @Test func resumedSessionStillReportsTheServerCertificate() async throws {
        var answers: [(reused: Bool, binding: String?)] = []
        for _ in 0..<3 {
            let response = try await client.send(HTTPRequest(url: server.trustedURL("/session")))
            let reused = response.text.contains("\"reused\": true")
            #expect(response.connection.newConnections == 1)
            answers.append((reused, response.connection.tlsServerEndPoint.map { $0.map { String(format: "%02x", $0) }.joined() }))
        }
        #expect(answers.dropFirst().contains { $0.reused }, "no connection resumed a TLS session: \(answers)")
        #expect(answers.allSatisfy { $0.binding == server.ports.trustedSHA256 }, "\(answers) vs \(server.ports.trustedSHA256)")
    }

    /// A pinned connection carries its certificate's tls-server-end-point (channel binding) and
    /// stays open for the next leg of a handshake, but a verified request never rides it: without
    /// the pin the same server is still untrusted.
    @Test func pinnedConnectionIsBoundAndKeptButNeverReusedUnverified() async throws {
        let pinned = HTTPRequest(url: server.untrustedURL("/hello"), pinnedCertificateSHA256: [server.ports.untrustedSHA256])
        let first = try await client.send(pinned)
        #expect(first.status == 200)
        // The test server's certificate is signed with SHA-256: the binding is the DER's SHA-256 (RFC 5929 §4.1).
        #expect(first.connection.tlsServerEndPoint.map { $0.map { String(format: "%02x", $0) }.joined() } == server.ports.untrustedSHA256)
        let second = try await client.send(pinned)
        #expect(second.connection.isSameConnection(as: first.connection), "\(first.connection) \(second.connection)")
        #expect(second.connection.tlsServerEndPoint == first.connection.tlsServerEndPoint)
        let error = await failure(of: HTTPRequest(url: server.untrustedURL("/hello")))
        guard case .certificateUntrusted = error else {
            Issue.record("a verified request got \(String(describing: error)) instead of certificateUntrusted")
            return
        }
    }

    @Test func pinAcceptsUpperCaseWithColons() async throws {
        let sha = server.ports.untrustedSHA256.uppercased()
        var pairs: [String] = []
        var index = sha.startIndex
        while index < sha.endIndex {
            let next = sha.index(index, offsetBy: 2)
            pairs.append(String(sha[index..<next]))
            index = next
        }
        let response = try await client.send(
            HTTPRequest(
                url: server.untrustedURL("/hello"), pinnedCertificateSHA256: [pairs.joined(separator: ":")]))
        #expect(response.status == 200)
    }

    @Test func pinnedRequestCarriesCredentialsAndBody() async throws {
        let response = try await client.send(
            HTTPRequest(
                method: "POST", url: server.untrustedURL("/echo"), body: Array("secret body".utf8),
                authentication: .basic(user: "u", password: "p"),
                pinnedCertificateSHA256: [server.ports.untrustedSHA256]))
        #expect(response.text == "secret body")
    }

    @Test func mismatchedPinStillFails() async throws {
        let wrong = String(repeating: "ab", count: 32)
        let error = await failure(of: HTTPRequest(url: server.untrustedURL("/hello"), pinnedCertificateSHA256: [wrong]))
        guard case .certificateUntrusted(_, let sha256, _, _, _, _) = error else {
            Issue.record("expected certificateUntrusted, got \(String(describing: error))")
            return
        }
        #expect(sha256 == server.ports.untrustedSHA256)
    }

    @Test func certificateForAnotherNameIsUntrusted() async throws {
        let error = await failure(of: HTTPRequest(url: "https://wrongname.contoso.test/hello"))
        guard case .certificateUntrusted(let host, _, let subject, _, _, _) = error else {
            Issue.record("expected certificateUntrusted, got \(String(describing: error))")
            return
        }
        #expect(host == "wrongname.contoso.test")
        #expect(subject.contains("autodiscover.contoso.test"))
    }

    @Test func withoutTheExtraCAFileTheTestCAIsUntrusted() async throws {
        let bare = try HTTPClient(configuration: .init(connectTo: server.connectTo))
        do {
            _ = try await bare.send(HTTPRequest(url: server.trustedURL("/hello")))
            Issue.record("expected certificateUntrusted")
        } catch {
            guard case .certificateUntrusted = error else {
                Issue.record("expected certificateUntrusted, got \(error)")
                return
            }
        }
    }

    /// The bundle lives in memory (CURLOPT_CAINFO_BLOB): nothing in $TMPDIR for a kill -9 to leave.
    @Test func caBundleWritesNoTemporaryFile() throws {
        let directory = NSTemporaryDirectory() + "ca-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        setenv("TMPDIR", directory, 1)
        defer { unsetenv("TMPDIR") }
        _ = try CABundle(extraFile: server.ports.caFile)
        _ = try CABundle(extraFile: server.ports.caFile, useSystemDirectory: false)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    @Test func extraCAFileIsAddedToTheSystemAnchors() throws {
        let extra = try String(contentsOfFile: server.ports.caFile, encoding: .utf8)
        let bundle = try CABundle(extraFile: server.ports.caFile)
        #expect(String(decoding: bundle.pem, as: UTF8.self).contains(extra))
        // Debian's libcurl has a hashed /etc/ssl/certs; the system anchors come from there.
        #expect(bundle.caPath == CABundle.hashedSystemDirectory())

        // Without a hashed directory: one file, system bundle first.
        let combined = try CABundle(extraFile: server.ports.caFile, useSystemDirectory: false)
        let text = String(decoding: combined.pem, as: UTF8.self)
        #expect(combined.caPath == nil)
        #expect(text.contains(extra))
        if let system = CABundle.systemBundlePath(), let anchors = try? String(contentsOfFile: system, encoding: .utf8) {
            #expect(text.hasPrefix(anchors))
        }
    }

    @Test func combinedBundleStillTrustsTheTestCA() async throws {
        // Same as the default path, forced through the single-file fallback.
        let bundle = try CABundle(extraFile: server.ports.caFile, useSystemDirectory: false)
        let spec = TransferSpec(
            mode: .verified, url: server.trustedURL("/hello"), scheme: "https", method: "GET",
            headers: [:], body: [], timeoutMs: 5000, connectTimeoutMs: 5000, maxResponseBytes: 1 << 20,
            authentication: .none, followRedirects: false)
        let transfer = try CurlTransfer(
            spec: spec, configuration: .init(connectTo: server.connectTo), caBundle: bundle)
        let driver = try CurlDriver()
        defer { driver.stop() }
        let result = await withCheckedContinuation { continuation in
            transfer.attach(continuation)
            driver.submit(transfer)
        }
        #expect(result.code.rawValue == 0)
        #expect(result.status == 200)
    }

    @Test func missingCAFileIsAConfigurationError() {
        #expect(throws: HTTPError.self) {
            try HTTPClient(configuration: .init(caFile: "/nonexistent/ca.pem"))
        }
    }

    // MARK: Credentials

    @Test func basicAuthReachesTheServer() async throws {
        let response = try await client.send(
            HTTPRequest(
                url: server.trustedURL("/headers"), authentication: .basic(user: "alice", password: "s3cret")))
        let fields = try JSONDecoder().decode([[String]].self, from: Data(response.body))
        let expected = "Basic " + Data("alice:s3cret".utf8).base64EncodedString()
        #expect(fields.contains(["Authorization", expected]))
    }

    @Test func bearerTokenTravelsAsAuthorizationHeader() async throws {
        let response = try await client.send(
            HTTPRequest(
                url: server.trustedURL("/headers"), authentication: .bearer(token: "tok-123")))
        let fields = try JSONDecoder().decode([[String]].self, from: Data(response.body))
        #expect(fields.contains(["Authorization", "Bearer tok-123"]))
    }

    @Test func plainHTTPWithoutCredentialsWorks() async throws {
        let response = try await client.send(HTTPRequest(url: "http://plain.contoso.test/hello"))
        #expect(response.text == "hello from plain")
    }

    @Test func credentialsOverPlainHTTPAreRefusedBeforeConnecting() async throws {
        let requests = [
            HTTPRequest(url: "http://sentinel.contoso.test/", authentication: .basic(user: "u", password: "p")),
            HTTPRequest(url: "http://sentinel.contoso.test/", authentication: .ntlm(user: "u", domain: "D", password: "p")),
            HTTPRequest(url: "http://sentinel.contoso.test/", authentication: .bearer(token: "t")),
            HTTPRequest(url: "http://sentinel.contoso.test/", headers: ["authorization": "Basic eDp5"]),
        ]
        for request in requests {
            #expect(await failure(of: request) == .insecureCredentials(host: "sentinel.contoso.test"))
        }
        let stats = try await server.stats(using: client)
        #expect(stats.accepts["sentinel"] == nil)
    }

    @Test func errorsNeverContainCredentials() async throws {
        let request = HTTPRequest(
            method: "POST", url: "https://refused.contoso.test/", body: Array("body-secret".utf8),
            authentication: .basic(user: "alice", password: "pw-secret"))
        let error = try #require(await failure(of: request))
        let text = "\(error) \(String(reflecting: error))"
        #expect(!text.contains("pw-secret"))
        #expect(!text.contains("body-secret"))
    }

    // MARK: Invalid input

    @Test func malformedRequestsAreRejected() async {
        #expect(await failure(of: HTTPRequest(url: "not a url")) != nil)
        #expect(await failure(of: HTTPRequest(url: "ftp://example.test/")) == .invalidRequest(reason: "only http and https URLs are supported"))
        let userInfo = await failure(of: HTTPRequest(url: "https://a:b@\(TestServer.trustedHost)/"))
        guard case .invalidRequest = userInfo else {
            Issue.record("expected invalidRequest, got \(String(describing: userInfo))")
            return
        }
        let injected = await failure(of: HTTPRequest(url: server.trustedURL("/hello"), headers: ["X-A": "1\r\nX-B: 2"]))
        guard case .invalidRequest = injected else {
            Issue.record("expected invalidRequest, got \(String(describing: injected))")
            return
        }
    }

    // MARK: Helpers

    static func der(ofPEM pem: String) -> Data? {
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return Data(base64Encoded: body)
    }
}

/// The host that decides where credentials may go is the one libcurl connects to.
@Suite struct RequestTargetTests {
    @Test func httpsHostIsLibcurlsReading() {
        #expect(RequestTarget.httpsHost(of: "https://MAIL.Contoso.test:443/EWS/Exchange.asmx") == "mail.contoso.test")
        // libcurl reads a hexadecimal IPv4 shorthand as the address it is; a text parser sees a name.
        #expect(RequestTarget.httpsHost(of: "https://0x7f.1/autodiscover/autodiscover.xml") == "127.0.0.1")
        #expect(RequestTarget.httpsHost(of: "http://mail.contoso.test/") == nil)
        #expect(RequestTarget.httpsHost(of: "https://alice:pw@mail.contoso.test/") == nil)
        #expect(RequestTarget.httpsHost(of: "https://mail.contoso.test\r\n.evil.test/") == nil)
    }
}
