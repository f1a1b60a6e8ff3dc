import ExtrasBase64
import HTTP
import Threading

#if canImport(Glibc)
    import Glibc
#endif

/// Which scheme a request authenticated with, for checks and messages.
public enum IntegratedScheme: Sendable, Equatable {
    case none
    case kerberos(channelBinding: Bool)
    /// `library`: false for gss-ntlmssp (NTLMv2 with MsvAvChannelBindings), true for libcurl's own NTLM.
    case ntlm(channelBinding: Bool, libcurl: Bool)
    case basic

    public var label: String {
        switch self {
        case .none: "no authentication"
        case .kerberos(let cbt): cbt ? "Kerberos with channel binding" : "Kerberos"
        case .ntlm(let cbt, _): cbt ? "NTLM with channel binding" : "NTLM without channel binding"
        case .basic: "Basic"
        }
    }

    /// A short stable name for a field: "kerberos", "ntlm", "basic", "none".
    public var name: String {
        switch self {
        case .none: "none"
        case .kerberos: "kerberos"
        case .ntlm: "ntlm"
        case .basic: "basic"
        }
    }

    public var channelBinding: Bool {
        switch self {
        case .kerberos(let cbt), .ntlm(let cbt, _): cbt
        case .none, .basic: false
        }
    }
}

public struct IntegratedCredentials: Sendable {
    public var userName: String
    public var domain: String?
    public var email: String
    public var password: String

    public init(userName: String, domain: String?, email: String, password: String) {
        self.userName = userName
        self.domain = domain
        self.email = email
        self.password = password
    }

    /// "alice@CONTOSO.COM": a UPN's suffix, else a DNS-style domain, else the e-mail domain, upper-cased.
    var kerberosPrincipal: String? {
        if let at = userName.lastIndex(of: "@") {
            return String(userName[..<at]) + "@" + userName[userName.index(after: at)...].uppercased()
        }
        let realm: String
        if let domain, domain.contains(".") {
            realm = domain.uppercased()
        } else if let at = email.lastIndex(of: "@"), email.index(after: at) < email.endIndex {
            realm = email[email.index(after: at)...].uppercased()
        } else {
            return nil
        }
        return "\(userName)@\(realm)"
    }

    /// "DOMAIN\user", or the bare user name (a UPN) without a domain.
    var ntlmName: String {
        // gss-ntlmssp splits "user@domain" into a user and a domain; "\\user@domain" keeps the
        // UPN whole with an empty domain, as Windows sends it.
        guard let domain, !domain.isEmpty else { return userName.contains("@") ? "\\" + userName : userName }
        return "\(domain)\\\(userName)"
    }
}

public enum IntegratedAuthError: Error, Sendable {
    /// Kerberos refused the credentials (wrong password, unknown user, locked, expired).
    case credentialsRefused(GSSFailure)
    /// The clocks differ by more than Kerberos' 5 minutes (KRB_AP_ERR_SKEW).
    case clockSkew(detail: String)
    /// The server refused a handshake that could not carry a TLS channel binding (Extended
    /// Protection = Require); `why` says why this path had none.
    case channelBindingRequired(scheme: String, why: String, host: String)
    /// A leg of a connection-bound handshake went over a new connection.
    case connectionNotReused(scheme: String)
    /// The server's mutual-authentication token did not verify: not the server the ticket is for.
    case mutualAuthenticationFailed(GSSFailure)
    case transport(HTTPError)
}

/// Windows-integrated authentication over one connection, in the order the server offers:
/// Negotiate → Kerberos (a ticket from the password, channel-bound to the server's
/// certificate) when the realm's KDC answers and knows HTTP/<host>; else NTLMv2 through
/// gss-ntlmssp with MsvAvChannelBindings; libcurl's own NTLM (no channel binding) only when
/// gss-ntlmssp is missing; Basic when that is all the server offers.
///
/// Round trips after the unauthenticated probe (a 401 that names the schemes, on a connection
/// whose certificate HTTPClient knows): Kerberos 1 (AP-REQ → 200 with AP-REP), NTLM 2
/// (NEGOTIATE → 401 CHALLENGE, AUTHENTICATE → 200), all on the probe's connection. A host whose
/// scheme the client already learned needs no probe: Kerberos 1 request in all, NTLM 2; a request
/// on a connection that authenticated and is still alive needs 1 (the probe is answered).
public struct IntegratedAuthenticator: Sendable {
    let client: any HTTPTransport
    /// A connection that authenticated this recently may still be in the client's pool, and
    /// Windows authenticates the connection: the request goes without a handshake first and
    /// usually needs none. Past it libcurl reuses no connection (CURLOPT_MAXAGE_CONN, 118 s by
    /// default; IIS closes idle ones after 120 s), so a host whose scheme is known gets the
    /// handshake at once, without the probe: never more requests than probing.
    public static let defaultLiveConnectionSeconds = 118.0
    let liveConnectionSeconds: Double

    public init(client: any HTTPTransport, liveConnectionSeconds: Double = Self.defaultLiveConnectionSeconds) {
        self.client = client
        self.liveConnectionSeconds = liveConnectionSeconds
    }

    public struct Outcome: Sendable {
        public var response: HTTPResponse
        public var scheme: IntegratedScheme
        /// Why earlier schemes were passed over ("Kerberos: Cannot contact any KDC…").
        public var notes: [String]
        /// The server's CHALLENGE token of an NTLM handshake (raw or SPNEGO), which names its
        /// domain: an `invalidCredentials` can say what to type without asking again.
        public var challengeToken: [UInt8]? = nil
        /// The host's scheme was known: the handshake went without an unauthenticated probe.
        public var probeSkipped = false
        /// The Authorization label of a gss-ntlmssp handshake ("NTLM", "Negotiate").
        var ntlmLabel: String? = nil
    }

    /// Scheme once per host: a host whose scheme this client learned (and whose authenticated
    /// connection is probably gone) gets the handshake at once; otherwise the unauthenticated
    /// probe decides (and rides a live authenticated connection for free).
    public func send(_ request: HTTPRequest, credentials: IntegratedCredentials) async throws(IntegratedAuthError) -> Outcome {
        let key = Self.memoryKey(request.url, credentials)
        let memory = client.authenticationMemory
        if let memory, let known = memory[key], request.url.lowercased().hasPrefix("https:"),
            monotonicSeconds() - known.authenticatedAt >= liveConnectionSeconds
        {
            if let outcome = try await sendKnown(request, known: known, credentials: credentials) {
                remember(outcome, key: key, in: memory)
                return outcome
            }
            memory[key] = nil // it changed: learn it again
        }
        let outcome = try await negotiate(request, credentials: credentials)
        if let memory { remember(outcome, key: key, in: memory) }
        return outcome
    }

    /// The origin (scheme, host, port) and the account: the scheme that works can differ by user.
    public static func memoryKey(_ url: String, _ credentials: IntegratedCredentials) -> String {
        let parts = url.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        let origin = parts.count >= 3 ? parts[0] + "//" + parts[2] : Substring(url)
        return origin.lowercased() + " " + credentials.ntlmName.lowercased()
    }

    private func remember(_ outcome: Outcome, key: String, in memory: AuthenticationMemory) {
        guard outcome.response.status != 401, (200..<500).contains(outcome.response.status) else { return }
        let now = monotonicSeconds()
        switch outcome.scheme {
        case .kerberos(channelBinding: true):
            memory[key] = AuthenticationMemory.Entry(
                scheme: "kerberos", label: "Negotiate", tlsServerEndPoint: outcome.response.connection.tlsServerEndPoint, authenticatedAt: now)
        case .ntlm(channelBinding: true, libcurl: false):
            memory[key] = AuthenticationMemory.Entry(
                scheme: "ntlm", label: outcome.ntlmLabel ?? "NTLM", tlsServerEndPoint: outcome.response.connection.tlsServerEndPoint,
                authenticatedAt: now)
        case .none:
            // Answered on a connection that authenticated earlier: it is still alive.
            if var known = memory[key] {
                known.authenticatedAt = now
                memory[key] = known
            }
        default:
            return
        }
    }

    /// The handshake of a known scheme without the probe. Nil when it no longer fits (the
    /// server answered otherwise); the caller then probes as for an unknown host.
    private func sendKnown(
        _ request: HTTPRequest, known: AuthenticationMemory.Entry, credentials: IntegratedCredentials
    ) async throws(IntegratedAuthError) -> Outcome? {
        let host = Self.host(of: request.url)
        switch known.scheme {
        case "kerberos":
            // The AP-REQ is bound before the request goes out: to the certificate this host
            // presented (the connection's own is checked on the answer).
            guard let principal = credentials.kerberosPrincipal, let endPoint = known.tlsServerEndPoint else { return nil }
            let context: GSSContext
            let token: [UInt8]
            do {
                context = try await GSSContext.start(
                    .kerberos, user: principal, password: credentials.password, host: host,
                    channelBinding: Array("tls-server-end-point:".utf8) + endPoint)
                token = try await context.step([]).token
            } catch {
                switch error.reason {
                case .badPassword, .unknownUser, .account: throw .credentialsRefused(error)
                case .clockSkew: throw .clockSkew(detail: "\(error.code ?? "KRB_AP_ERR_SKEW"): \(error.message)")
                default: return nil
                }
            }
            var leg = request
            leg.authentication = .none
            leg.requireHTTP11 = true
            leg.headers.add("Authorization", "Negotiate " + Base64.encodeToString(bytes: token))
            let answer = try await transport(leg)
            guard answer.status != 401 else { return nil }
            if let serverToken = Self.token(in: answer, scheme: "negotiate") {
                do { _ = try await context.step(serverToken) } catch { throw .mutualAuthenticationFailed(error) }
            }
            return Outcome(response: answer, scheme: .kerberos(channelBinding: true), notes: [], probeSkipped: true)
        case "ntlm":
            // The host wants NTLM: the NEGOTIATE leg (empty body) goes first, and the
            // AUTHENTICATE is bound to the certificate of the connection that leg went over.
            guard await GSSContext.ntlmAvailable else { return nil }
            let context: GSSContext
            var token: [UInt8]
            do {
                context = try await GSSContext.start(.ntlm, user: credentials.ntlmName, password: credentials.password, host: host, channelBinding: nil)
                token = try await context.step([]).token
            } catch {
                throw .credentialsRefused(error)
            }
            var first = request
            first.authentication = .none
            first.requireHTTP11 = true
            first.body = []
            first.headers.add("Authorization", "\(known.label) " + Base64.encodeToString(bytes: token))
            let answer = try await transport(first)
            guard answer.status == 401, let challenge = Self.token(in: answer, scheme: known.label.lowercased()),
                let endPoint = answer.connection.tlsServerEndPoint,
                await context.bind(Array("tls-server-end-point:".utf8) + endPoint)
            else { return nil }
            do {
                token = try await context.step(challenge).token
            } catch {
                throw .credentialsRefused(error)
            }
            var last = request
            last.authentication = .none
            last.requireHTTP11 = true
            last.headers.add("Authorization", "\(known.label) " + Base64.encodeToString(bytes: token))
            let final = try await transport(last)
            guard final.connection.isSameConnection(as: answer.connection) else { throw .connectionNotReused(scheme: "NTLM") }
            return Outcome(
                response: final, scheme: .ntlm(channelBinding: true, libcurl: false), notes: [], challengeToken: challenge,
                probeSkipped: true, ntlmLabel: known.label)
        default:
            return nil
        }
    }

    /// Unknown host (or a live authenticated connection): the request without credentials, and
    /// its 401 decides.
    func negotiate(_ request: HTTPRequest, credentials: IntegratedCredentials) async throws(IntegratedAuthError) -> Outcome {
        var probe = request
        probe.authentication = .none
        probe.requireHTTP11 = true
        let first = try await transport(probe)
        guard first.status == 401 else { return Outcome(response: first, scheme: .none, notes: []) }
        let offered = Set(
            first.headers.values(for: "WWW-Authenticate").compactMap {
                $0.split(separator: " ").first.map { $0.lowercased() }
            })
        let binding = first.connection.tlsServerEndPoint.map { Array("tls-server-end-point:".utf8) + $0 }
        let host = Self.host(of: request.url)
        var notes: [String] = []
        if request.url.lowercased().hasPrefix("https:") && binding == nil {
            // No certificate to bind to (libcurl reported none for this connection): libcurl's
            // NTLM keeps its legs on one connection itself; a refusal is channelBindingRequired.
            notes.append("no channel binding: the server's certificate was not captured")
            return try await legacy(request, offered: offered, credentials: credentials, notes: notes)
        }

        if offered.contains("negotiate"), let principal = credentials.kerberosPrincipal {
            if let outcome = try await kerberos(
                request, principal: principal, password: credentials.password, host: host,
                binding: binding, probe: first, notes: &notes)
            {
                return outcome
            }
        }
        if offered.contains("ntlm") || offered.contains("negotiate") {
            let label = offered.contains("ntlm") ? "NTLM" : "Negotiate"
            if await GSSContext.ntlmAvailable {
                return try await ntlm(
                    request, label: label, credentials: credentials, host: host, binding: binding,
                    probe: first, notes: notes)
            }
            notes.append("NTLM with channel binding: gss-ntlmssp is not installed")
        }
        return try await legacy(request, offered: offered, credentials: credentials, notes: notes, probe: first)
    }

    /// libcurl's own NTLM (no channel binding) when offered, else Basic.
    private func legacy(
        _ request: HTTPRequest, offered: Set<String>, credentials: IntegratedCredentials, notes: [String],
        probe: HTTPResponse? = nil
    ) async throws(IntegratedAuthError) -> Outcome {
        var next = request
        if offered.contains("ntlm") || offered.contains("negotiate") {
            next.authentication = .ntlm(user: credentials.userName, domain: credentials.domain, password: credentials.password)
            return Outcome(response: try await transport(next), scheme: .ntlm(channelBinding: false, libcurl: true), notes: notes)
        }
        if offered.contains("basic") {
            next.authentication = .basic(
                user: credentials.domain.map { "\($0)\\\(credentials.userName)" } ?? credentials.userName,
                password: credentials.password)
            return Outcome(response: try await transport(next), scheme: .basic, notes: notes)
        }
        if let probe { return Outcome(response: probe, scheme: .none, notes: notes) }
        return Outcome(response: try await transport(next), scheme: .none, notes: notes)
    }

    // MARK: Kerberos

    /// nil: Kerberos does not apply here (no KDC, no SPN, ticket refused), try NTLM.
    private func kerberos(
        _ request: HTTPRequest, principal: String, password: String, host: String, binding: [UInt8]?,
        probe: HTTPResponse, notes: inout [String]
    ) async throws(IntegratedAuthError) -> Outcome? {
        let context: GSSContext
        let token: [UInt8]
        do {
            context = try await GSSContext.start(.kerberos, user: principal, password: password, host: host, channelBinding: binding)
            token = try await context.step([]).token
        } catch {
            switch error.reason {
            case .badPassword, .unknownUser, .account:
                throw .credentialsRefused(error)
            case .clockSkew:
                throw .clockSkew(detail: "\(error.code ?? "KRB_AP_ERR_SKEW"): \(error.message)")
            case .unavailable, .kdcUnreachable, .noServicePrincipal, .badBindings, .other:
                notes.append("Kerberos: \(error.message)")
                return nil
            }
        }
        var leg = request
        leg.authentication = .none
        leg.requireHTTP11 = true
        leg.headers.add("Authorization", "Negotiate " + Base64.encodeToString(bytes: token))
        let answer = try await transport(leg)
        guard answer.connection.isSameConnection(as: probe.connection) else { throw .connectionNotReused(scheme: "Kerberos") }
        let serverToken = Self.token(in: answer, scheme: "negotiate")
        if answer.status != 401 {
            if let serverToken {
                do { _ = try await context.step(serverToken) } catch { throw .mutualAuthenticationFailed(error) }
            }
            return Outcome(response: answer, scheme: .kerberos(channelBinding: binding != nil), notes: notes)
        }
        // Refused. A KRB-ERROR in the answer names why (as Windows sends it); else the
        // server's clock (its Date header) may say it.
        var refusal = "the server refused the ticket"
        if let serverToken {
            do { _ = try await context.step(serverToken) } catch {
                if error.reason == .clockSkew { throw .clockSkew(detail: "\(error.code ?? "KRB_AP_ERR_SKEW"): \(error.message)") }
                refusal += " (\(error.message))"
            }
        }
        if let skew = Self.clockSkewSeconds(answer), abs(skew) > 300 {
            throw .clockSkew(
                detail: "KRB_AP_ERR_SKEW: the server's clock is \(abs(skew) / 60) minutes "
                    + (skew > 0 ? "ahead of" : "behind") + " this computer's; Kerberos allows 5")
        }
        notes.append("Kerberos: " + refusal)
        return nil
    }

    // MARK: NTLM through gss-ntlmssp

    private func ntlm(
        _ request: HTTPRequest, label: String, credentials: IntegratedCredentials, host: String, binding: [UInt8]?,
        probe: HTTPResponse, notes: [String]
    ) async throws(IntegratedAuthError) -> Outcome {
        let context: GSSContext
        var token: [UInt8]
        do {
            context = try await GSSContext.start(
                .ntlm, user: credentials.ntlmName, password: credentials.password, host: host,
                channelBinding: binding)
            token = try await context.step([]).token
        } catch {
            throw .credentialsRefused(error)
        }
        var seenChallenge: [UInt8]?
        for leg in 1...2 {
            var next = request
            next.authentication = .none
            next.requireHTTP11 = true
            next.headers.add("Authorization", "\(label) " + Base64.encodeToString(bytes: token))
            if leg == 1 {
                // NEGOTIATE_MESSAGE: the body waits for the last leg (as libcurl's NTLM does).
                next.body = []
            }
            let answer = try await transport(next)
            guard answer.connection.isSameConnection(as: probe.connection) else { throw .connectionNotReused(scheme: "NTLM") }
            let scheme = IntegratedScheme.ntlm(channelBinding: binding != nil, libcurl: false)
            guard leg == 1, answer.status == 401, let challenge = Self.token(in: answer, scheme: label.lowercased()) else {
                return Outcome(response: answer, scheme: scheme, notes: notes, challengeToken: seenChallenge, ntlmLabel: label)
            }
            seenChallenge = challenge
            do {
                token = try await context.step(challenge).token
            } catch {
                throw .credentialsRefused(error)
            }
        }
        preconditionFailure("the loop returns on its second leg")
    }

    // MARK: Helpers

    private func transport(_ request: HTTPRequest) async throws(IntegratedAuthError) -> HTTPResponse {
        do { return try await client.send(request) } catch { throw .transport(error) }
    }

    static func token(in response: HTTPResponse, scheme: String) -> [UInt8]? {
        for value in response.headers.values(for: "WWW-Authenticate") {
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == scheme,
                let bytes = try? Base64.decode(string: String(parts[1]).trimmingCharacters())
            else { continue }
            return bytes
        }
        return nil
    }

    public static func host(of url: String) -> String {
        let parts = url.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0].hasSuffix(":"), parts[1].isEmpty else { return url }
        var rest = parts[2]
        if let end = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<end] }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") { return String(rest[rest.index(after: rest.startIndex)..<close]) }
        if let colon = rest.lastIndex(of: ":") { rest = rest[..<colon] }
        return rest.lowercased()
    }

    /// Server clock minus ours, from the answer's Date header (RFC 9110 IMF-fixdate).
    static func clockSkewSeconds(_ response: HTTPResponse) -> Int? {
        guard let date = response.headers.values(for: "Date").first else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let parts = date.split(separator: " ")
        guard parts.count == 6, let day = Int32(parts[1]), let month = months.firstIndex(of: String(parts[2])),
            let year = Int32(parts[3])
        else { return nil }
        let clock = parts[4].split(separator: ":").compactMap { Int32($0) }
        guard clock.count == 3 else { return nil }
        var fields = tm()
        fields.tm_year = year - 1900
        fields.tm_mon = Int32(month)
        fields.tm_mday = day
        fields.tm_hour = clock[0]
        fields.tm_min = clock[1]
        fields.tm_sec = clock[2]
        let server = timegm(&fields)
        return Int(server - time(nil))
    }
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var text = Substring(self)
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return String(text)
    }
}
