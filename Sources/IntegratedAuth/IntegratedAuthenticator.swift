import ExtrasBase64
import HTTP

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
/// (NEGOTIATE → 401 CHALLENGE, AUTHENTICATE → 200), all on the probe's connection.
public struct IntegratedAuthenticator: Sendable {
    let client: any HTTPTransport

    public init(client: any HTTPTransport) {
        self.client = client
    }

    public struct Outcome: Sendable {
        public var response: HTTPResponse
        public var scheme: IntegratedScheme
        /// Why earlier schemes were passed over ("Kerberos: Cannot contact any KDC…").
        public var notes: [String]
        /// The server's CHALLENGE token of an NTLM handshake (raw or SPNEGO), which names its
        /// domain: an `invalidCredentials` can say what to type without asking again.
        public var challengeToken: [UInt8]? = nil
    }

    public func send(_ request: HTTPRequest, credentials: IntegratedCredentials) async throws(IntegratedAuthError) -> Outcome {
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
                return Outcome(response: answer, scheme: scheme, notes: notes, challengeToken: seenChallenge)
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
