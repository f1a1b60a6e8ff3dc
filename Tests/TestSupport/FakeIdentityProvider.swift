import Foundation
import RPCCore
import WizardContract

/// Tests/Fixtures/oauth/fake_idp.py driven from a test: fake SuperOffice, Microsoft and Google
/// identity providers on one loopback HTTPS port, reached under their production host names
/// (libcurl CONNECT_TO, see `connectTo(hosts:)`) over real TLS from a test CA (`caFile`).
/// The test plays the browser with `playBrowser(authorizationURL:)`; see the fixture's README.md
/// for the config, the scenarios and the log format.
///
/// Every call here is synchronous and spawns /usr/bin/curl; call from a test, not from a hot path.
/// `@unchecked Sendable`: all stored properties are `let`s set in `init`; the only mutable state
/// (`stopped`) is guarded by `stopLock`, and Process/Pipe are touched again only in `stop()`.
public final class FakeIdentityProvider: @unchecked Sendable {
    public static let superOfficeHosts = [
        "sod.superoffice.com", "qaonline.superoffice.com", "online.superoffice.com",
        "app-online.superoffice.com", "app-sod.superoffice.com", "app-stage.superoffice.com",
    ]
    public static let microsoftHosts = ["login.microsoftonline.com", "graph.microsoft.com", "outlook.office365.com"]
    public static let googleHosts = [
        "accounts.google.com", "oauth2.googleapis.com", "www.googleapis.com", "admin.googleapis.com",
    ]

    /// The loopback port of the one HTTPS listener.
    public let httpsPort: Int
    /// PEM of the CA that issued every served certificate (give it to the client as its CA bundle).
    public let caFile: String
    /// PEM of a second CA; hosts in the config's "untrustedHosts" are served from it.
    public let untrustedCaFile: String
    /// Every host name the fixture has a certificate for (from its ready line).
    public let hosts: [String]
    /// The `kid` of the signing key in the JWKS.
    public let kid: String
    public let workDirectory: String
    public let logFile: String
    /// The whole ready line.
    public let ready: JSONValue

    private let process: Process
    private let stdinPipe: Pipe
    private let stopLock = NSLock()
    private var stopped = false // guarded by stopLock

    /// Starts the fixture with `config` (README.md; `[:]` = defaults) and waits for its ready line.
    public init(config: JSONValue = [:], timeout: Double = 15) throws {
        let script = TestPaths.repositoryRoot.appendingPathComponent("Tests/Fixtures/oauth/fake_idp.py").path
        workDirectory = TestPaths.makeTemporaryDirectory("fake-idp")
        logFile = workDirectory + "/log.jsonl"
        let configFile = workDirectory + "/config.json"
        let stderrFile = workDirectory + "/fake_idp.stderr"
        try Data(JSONWriter.bytes(config)).write(to: URL(fileURLWithPath: configFile))
        _ = FileManager.default.createFile(atPath: stderrFile, contents: nil)

        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "--config", configFile, "--log", logFile, "--workdir", workDirectory]
        stdinPipe = Pipe()
        let stdoutPipe = Pipe()
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = FileHandle(forWritingAtPath: stderrFile)
        let reader = LineReader()
        PipeDrain.start(stdoutPipe.fileHandleForReading) { reader.append($0) }
        try process.run()

        func failure(_ what: String) -> FakeIdentityProviderError {
            let stderr = (try? String(contentsOfFile: stderrFile, encoding: .utf8)) ?? ""
            return FakeIdentityProviderError(
                description:
                    "fake_idp.py \(what) (needs python3 with trustme and cryptography: pip install trustme cryptography); "
                    + "stderr: \(stderr.isEmpty ? "(empty)" : stderr)")
        }
        guard let line = reader.waitForLine(timeout: timeout) else {
            let exited = !process.isRunning
            if process.isRunning { process.terminate() }
            throw failure(exited ? "exited before it was ready" : "was not ready within \(Int(timeout)) s")
        }
        let parsed: JSONValue
        do { parsed = try JSONParser.parse(line) } catch { throw failure("printed an unreadable ready line: \(line)") }
        guard let port = parsed["httpsPort"]?.intValue, let ca = parsed["caFile"]?.stringValue,
            let untrusted = parsed["untrustedCaFile"]?.stringValue
        else {
            throw failure("printed an incomplete ready line: \(line)")
        }
        ready = parsed
        httpsPort = port
        caFile = ca
        untrustedCaFile = untrusted
        hosts = parsed["hosts"]?.arrayValue?.compactMap(\.stringValue) ?? []
        kid = parsed["kid"]?.stringValue ?? ""
    }

    deinit { stop() }

    /// Closes the fixture's stdin (it exits on EOF); terminates it if it is still there after 2 s.
    public func stop() {
        stopLock.lock()
        defer { stopLock.unlock() }
        guard !stopped else { return }
        stopped = true
        try? stdinPipe.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(2)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate() }
    }

    // MARK: Routing

    /// CONNECT_TO entries "HOST:443:127.0.0.1:PORT" for `hosts` (default: every host it serves).
    public func connectTo(hosts: [String]? = nil) -> [String] {
        (hosts ?? self.hosts).map { "\($0):443:127.0.0.1:\(httpsPort)" }
    }

    // MARK: Control

    /// Sets the current scenario (README.md lists them), for every provider or just one
    /// ("superoffice", "microsoft", "google"). A sign-in keeps the scenario that was current
    /// when its authorization request arrived.
    public func setScenario(_ name: String, provider: String? = nil) throws {
        var body = JSONObject([("scenario", .string(name))])
        if let provider { body.append("provider", .string(provider)) }
        let reply = try send(
            "POST", url: controlURL("scenario"), headers: ["Content-Type: application/json"],
            body: JSONWriter.string(.object(body)))
        guard reply.status == 200 else {
            throw FakeIdentityProviderError(description: "setScenario(\(name)): HTTP \(reply.status) \(reply.body)")
        }
    }

    /// Every logged request so far (the log file, one JSON object per line; /__control/* excluded).
    public func requests() -> [JSONValue] {
        guard let data = FileManager.default.contents(atPath: logFile) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap { try? JSONParser.parse(Array($0)) }
    }

    /// Logged requests whose "endpoint" is `endpoint` ("authorize", "token", "state", "currentPrincipal", ...).
    public func requests(endpoint: String) -> [JSONValue] {
        requests().filter { $0["endpoint"]?.stringValue == endpoint }
    }

    /// Every code, token and client secret value the fixture handed out: for asserting that none
    /// of them shows up in syncwizard's logs, traces, profile files or replies.
    public func issuedSecrets() throws -> [String] {
        let reply = try send(url: controlURL("issued"))
        let json = try reply.json()
        let values = (json["secrets"]?.arrayValue ?? []) + (json["clientSecrets"]?.arrayValue ?? [])
        return values.compactMap(\.stringValue)
    }

    /// Makes every access token issued so far invalid (as if an hour passed): APIs answer 401.
    public func expireAccessTokens() throws {
        _ = try send("POST", url: controlURL("expire-access-tokens"))
    }

    /// Revokes every refresh token issued so far (consent withdrawn): refreshes answer invalid_grant.
    public func revokeRefreshTokens() throws {
        _ = try send("POST", url: controlURL("revoke-refresh-tokens"))
    }

    /// Sets the Microsoft tenant's delegated permission grants as a `consentType` would start
    /// them (`AllPrincipals`, `Principal`, `none`; README.md, `/__control/grants`).
    public func resetGrants(consentType: String) throws {
        let reply = try send(
            "POST", url: controlURL("grants"), headers: ["Content-Type: application/json"],
            body: JSONWriter.string(["consentType": .string(consentType)]))
        guard reply.status == 200 else {
            throw FakeIdentityProviderError(description: "resetGrants(\(consentType)): HTTP \(reply.status) \(reply.body)")
        }
    }

    /// Exactly these grants (`[{"clientId", "consentType", "scopes", "resource"?}]`).
    public func setGrants(_ grants: JSONValue) throws {
        let reply = try send(
            "POST", url: controlURL("grants"), headers: ["Content-Type: application/json"], body: JSONWriter.string(["grants": grants]))
        guard reply.status == 200 else {
            throw FakeIdentityProviderError(description: "setGrants: HTTP \(reply.status) \(reply.body)")
        }
    }

    private func controlURL(_ what: String) -> String {
        "https://\(hosts.first ?? "online.superoffice.com")/__control/\(what)"
    }

    // MARK: Playing the browser

    /// GETs the authorization (or admin consent) URL without following redirects and returns
    /// the Location it redirects to (the loopback redirect URI with code and state, or with an
    /// error). Throws when the provider does not redirect (e.g. an error page for a bad redirect_uri).
    public func redirectLocation(authorizationURL: String, scenario: String? = nil) throws -> String {
        let reply = try send(url: Self.with(scenario: scenario, authorizationURL))
        guard (300..<400).contains(reply.status), let location = reply.headers["location"] else {
            throw FakeIdentityProviderError(
                description:
                    "no redirect from \(authorizationURL.prefix(80))…: HTTP \(reply.status) \(reply.body.prefix(300))")
        }
        return location
    }

    /// Plays the browser: GETs the authorization URL through the fake (TLS with `caFile`,
    /// production host names) and follows every redirect (to syncwizard's loopback listener,
    /// plain http, and from there to a next leg, up to 10), returning the last page: its status,
    /// body, and the URL it was served from. When the provider shows a page instead of
    /// redirecting, that is the authorization URL. `scenario` rides on the first request as `__scenario`.
    public func playBrowser(authorizationURL: String, scenario: String? = nil) throws
        -> (status: Int, body: String, landedOn: String)
    {
        // A browser follows every redirect: the identity provider's to the loopback page, and the
        // loopback page's on to the next leg (admin consent, then the authorization request).
        var url = Self.with(scenario: scenario, authorizationURL)
        for _ in 0..<10 {
            let page = try send(url: url)
            guard (300..<400).contains(page.status), let location = page.headers["location"] else {
                return (page.status, page.body, url)
            }
            url = URL(string: location, relativeTo: URL(string: url))?.absoluteString ?? location
        }
        throw FakeIdentityProviderError(description: "more than 10 redirects from \(authorizationURL)")
    }

    private static func with(scenario: String?, _ url: String) -> String {
        guard let scenario else { return url }
        let encoded = scenario.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? scenario
        return url + (url.contains("?") ? "&" : "?") + "__scenario=" + encoded
    }

    // MARK: Plain requests

    public struct Reply: Sendable {
        public var status: Int
        /// Lower-cased names; the last value wins.
        public var headers: [String: String]
        public var body: String

        public func json() throws -> JSONValue {
            do { return try JSONParser.parse(body) } catch {
                throw FakeIdentityProviderError(description: "not JSON (HTTP \(status)): \(body.prefix(300))")
            }
        }
    }

    /// One request with /usr/bin/curl, through the fake for its hosts (--connect-to, --cacert),
    /// redirects not followed; plain http (the loopback redirect URI) goes straight out.
    /// The body travels on curl's stdin, never on its command line.
    public func send(
        _ method: String = "GET", url: String, headers: [String] = [], body: String? = nil,
        timeout: Double = 20
    ) throws -> Reply {
        let stem = workDirectory + "/curl-" + UUID().uuidString
        let bodyFile = stem + ".body"
        let headerFile = stem + ".headers"
        defer {
            try? FileManager.default.removeItem(atPath: bodyFile)
            try? FileManager.default.removeItem(atPath: headerFile)
        }
        var arguments = [
            "-sS", "--noproxy", "*", "--max-time", String(timeout), "--cacert", caFile,
            "-X", method, "-o", bodyFile, "-D", headerFile, "-w", "%{http_code}",
        ]
        for entry in connectTo() { arguments += ["--connect-to", entry] }
        for header in headers { arguments += ["-H", header] }
        if body != nil { arguments += ["--data-binary", "@-"] }
        arguments.append(url)

        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        curl.standardOutput = out
        curl.standardError = err
        curl.standardInput = input
        try curl.run()
        if let body { input.fileHandleForWriting.write(Data(body.utf8)) }
        try? input.fileHandleForWriting.close()
        let status = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let problem = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        curl.waitUntilExit()
        guard curl.terminationStatus == 0, let code = Int(status.trimmingCharacters(in: .whitespaces)) else {
            throw FakeIdentityProviderError(
                description:
                    "curl \(method) \(url.prefix(100)) failed (exit \(curl.terminationStatus)): \(problem)")
        }
        let raw = (try? String(contentsOfFile: headerFile, encoding: .isoLatin1)) ?? ""
        var fields: [String: String] = [:]
        // Only the last response's header block (curl writes one per response, e.g. after 100 Continue).
        for line in raw.components(separatedBy: "\r\n") {
            if line.hasPrefix("HTTP/") {
                fields = [:]
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let text = (try? String(contentsOfFile: bodyFile, encoding: .utf8)) ?? ""
        return Reply(status: code, headers: fields, body: text)
    }
}

public struct FakeIdentityProviderError: Error, CustomStringConvertible {
    public var description: String
}

/// Collects the fixture's stdout until the first newline.
/// `@unchecked Sendable`: all state is guarded by `condition`.
private final class LineReader: @unchecked Sendable {
    private let condition = NSCondition()
    private var buffer = Data()
    private var closed = false

    func append(_ chunk: Data) {
        condition.lock()
        if chunk.isEmpty { closed = true } else if buffer.count < 1 << 16 { buffer.append(chunk) }
        condition.broadcast()
        condition.unlock()
    }

    /// The first line, or nil when stdout closed or `timeout` passed before a newline arrived.
    func waitForLine(timeout: Double) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                return String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
            }
            if closed || !condition.wait(until: deadline) { return nil }
        }
    }
}
