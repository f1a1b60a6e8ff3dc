import ConnectorCore
import DNS
import ExtrasBase64
import HTTP
import NTLMChallenge
import RPCCore
import Threading
import WizardContract

/// Reads the account's Windows domain from the Exchange server's NTLM challenge, with no
/// credential (protocols.md §7.4, [MS-NLMP] §2.2.1.2): a GET with `Authorization: NTLM
/// <NEGOTIATE_MESSAGE>` (or its SPNEGO form as `Negotiate` for servers that offer only that)
/// draws a 401 whose CHALLENGE names the NetBIOS domain, the DNS domain, the forest and the
/// server. Nothing else is sent: no user name, no password, no AUTHENTICATE message.
///
/// Where: the given EWS URL, or Autodiscover's candidates under Autodiscover's rules
/// (AutodiscoverRules): the two https candidates of the exact e-mail domain at once, the
/// plain-http redirect (followed only to https, never with a token over http), DNS SRV on
/// port 443; a redirect or SRV target outside the e-mail domain only when the caller allowed it.
public struct AccountHintsProbe: Sendable {
    let client: any HTTPTransport
    let resolver: SRVResolver?
    let budgetSeconds: Double
    let attemptTimeoutSeconds: Double
    let pins: @Sendable (String) -> [String]

    /// `resolver` nil: no SRV step (a caller that only probes a known URL).
    public init(
        client: any HTTPTransport, resolver: SRVResolver?, budgetSeconds: Double = 10, attemptTimeoutSeconds: Double = 5,
        pins: @escaping @Sendable (String) -> [String] = { _ in [] }
    ) {
        self.client = client
        self.resolver = resolver
        self.budgetSeconds = budgetSeconds
        self.attemptTimeoutSeconds = attemptTimeoutSeconds
        self.pins = pins
    }

    /// The hints of `email`'s account: from `ewsUrl` when given, else from the first endpoint
    /// Autodiscover's rules allow that offers NTLM or Negotiate. Errors: `hintsUnavailable`
    /// (endpoints answered, none with NTLM or Negotiate), `endpointInvalid` (not https),
    /// `redirectNeedsConfirmation`, `certificateUntrusted`, `hostUnreachable`, `timeout`.
    public func discoverAccountHints(
        email: String, ewsUrl: String? = nil, allowRedirectHosts: [String] = [], progress: @escaping ProgressReporter = { _, _, _ in }
    ) async throws(RPCError) -> AccountHints {
        guard let domain = EmailAddress.domain(of: email) else {
            throw .invalidParams(field: "email", "'email' must be an e-mail address like alice@contoso.com.")
        }
        var allowed = Set(allowRedirectHosts.map { $0.lowercased() })
        if let ewsUrl {
            guard let host = RequestTarget.httpsHost(of: ewsUrl) else {
                throw RPCError(
                    .endpointInvalid, "'ewsUrl' must be an absolute https URL, like https://mail.contoso.com/EWS/Exchange.asmx.",
                    hint: "The NTLM probe goes only over https.", details: ["field": "ewsUrl"])
            }
            // The user typed this host: it and its redirects within it are theirs to vouch for.
            allowed.insert(host)
        }
        let run = HintsRun(probe: self, email: email, domain: domain, allowed: allowed, progress: progress)
        if let ewsUrl {
            progress("accountHints", "Asking \(ewsUrl) for its NTLM challenge.", 10)
            return try run.conclude([await run.probe(url: ewsUrl, viaRedirect: false)])
        }
        return try await run.autodiscoverCandidates()
    }

    /// One URL the caller already trusts (the endpoint that just answered 401): no redirects.
    public func hints(at url: String, email: String) async throws(RPCError) -> AccountHints {
        guard let domain = EmailAddress.domain(of: email) else {
            throw .invalidParams(field: "email", "'email' must be an e-mail address like alice@contoso.com.")
        }
        let run = HintsRun(probe: self, email: email, domain: domain, allowed: [], progress: { _, _, _ in })
        return try run.conclude([await run.probe(url: url, viaRedirect: false, followRedirects: false)])
    }
}

extension AccountHints {
    /// The hints a challenge gives for `email`: `DOMAIN\local` and the implicit UPN
    /// `local@dnsDomain` (valid for every account of the domain), the local part of the
    /// e-mail address taken as the logon name.
    public static func from(
        _ challenge: NTLMChallengeInfo, email: String, probedUrl: String, scheme: String, attempts: [AutodiscoverAttempt]
    ) -> AccountHints {
        let local = email.split(separator: "@", maxSplits: 1).first.map(String.init) ?? email
        let emailDomain = EmailAddress.domain(of: email) ?? ""
        let domain = challenge.netbiosDomain
        var forms = ["\(domain)\\\(local)"]
        var advice = "The server's domain is \(domain): type \(local) as User name and \(domain) as Domain"
        if let dns = challenge.dnsDomain {
            // The e-mail address itself is this form when its domain is the DNS domain.
            forms.append("\(local)@\(dns.lowercased() == emailDomain ? emailDomain : dns)")
            advice += ", or \(forms[1]) with Domain blank"
        }
        advice += "."
        if let dns = challenge.dnsDomain, dns.lowercased() != emailDomain {
            advice +=
                " The e-mail domain \(emailDomain) is not the Windows domain (\(dns)), so \(email) works as a user name only if it is also the account's UPN."
        }
        let version = challenge.version.map { "\($0.major).\($0.minor).\($0.build)" }
        return AccountHints(
            netbiosDomain: domain, dnsDomain: challenge.dnsDomain, forest: challenge.forest,
            server: challenge.dnsComputer ?? challenge.netbiosComputer, userNameForms: forms, probedUrl: probedUrl, scheme: scheme,
            userNameField: local, domainField: domain, advice: advice, windowsVersion: version, attempts: attempts)
    }
}

extension AccountHints {
    /// `invalidCredentials` with these hints: `data.accountHints`, and a hint that says what to
    /// type instead (or, when the entered name already fits the domain, that the password is wrong).
    public func attach(to error: RPCError, account: ExchangeAccount) -> RPCError {
        var error = error.with("accountHints", json)
        let typed = account.domain.map { "\($0)\\\(account.userName)" } ?? account.userName
        if userNameForms.contains(where: { $0.lowercased() == typed.lowercased() }) {
            error.hint =
                "The user name \(typed) fits the server's domain (\(netbiosDomain)); check the password, and that the account is not locked or expired."
        } else {
            error.hint = "Check the user name form and the password. " + advice
        }
        return error
    }
}

/// One discovery: the attempt log, the redirect count and the deadline.
final class HintsRun: Sendable {
    let settings: AccountHintsProbe
    let email: String
    let domain: String
    let allowed: Set<String>
    let progress: ProgressReporter
    let deadline: Double
    private let state = MutexBox(State())

    struct State {
        var attempts: [AutodiscoverAttempt] = []
        var redirects = 0
        var seen: Set<String> = []
    }

    /// What one endpoint came to.
    enum Result: Sendable {
        case challenge(NTLMChallengeInfo, url: String, scheme: String)
        /// It answered, but offers neither NTLM nor Negotiate (Basic only, no authentication, a 404…).
        case noNTLM(url: String, detail: String)
        /// It offers NTLM or Negotiate, but its challenge does not parse.
        case badChallenge(url: String, NTLMChallengeError)
        case needsConfirmation(host: String)
        case failed(HTTPError)
        case rejected

        var isChallenge: Bool {
            if case .challenge = self { return true }
            return false
        }
    }

    init(probe: AccountHintsProbe, email: String, domain: String, allowed: Set<String>, progress: @escaping ProgressReporter) {
        self.settings = probe
        self.email = email
        self.domain = domain
        self.allowed = allowed
        self.progress = progress
        self.deadline = monotonicSeconds() + probe.budgetSeconds
    }

    var remaining: Double { deadline - monotonicSeconds() }
    var attempts: [AutodiscoverAttempt] { state.withLock { $0.attempts } }

    func record(_ url: String, _ method: String, _ outcome: String, _ detail: String, _ ms: Int) {
        state.withLock { $0.attempts.append(AutodiscoverAttempt(url: url, method: method, outcome: outcome, detail: detail, durationMs: ms)) }
        progress("accountHints", "\(method) \(url): \(detail) (\(ms) ms)", nil)
    }

    // MARK: - Where to ask

    func autodiscoverCandidates() async throws(RPCError) -> AccountHints {
        var results: [Result] = []
        progress("accountHints", "Looking for an NTLM endpoint of \(domain).", 10)
        results += await concurrently(AutodiscoverRules.httpsCandidates(domain: domain))
        if results.contains(where: \.isChallenge) || remaining <= 0 { return try conclude(results) }

        progress("accountHints", "Trying the http redirect of autodiscover.\(domain).", 50)
        if let viaRedirect = await httpRedirect() {
            results.append(viaRedirect)
            if viaRedirect.isChallenge || remaining <= 0 { return try conclude(results) }
        }

        if let resolver = settings.resolver {
            progress("accountHints", "Looking up \(AutodiscoverRules.srvName(domain: domain)).", 75)
            let name = AutodiscoverRules.srvName(domain: domain)
            let watch = Stopwatch()
            do {
                let records = try await resolver.lookup(name, deadline: deadline).filter(AutodiscoverRules.isUsable)
                record(
                    name, "SRV", records.isEmpty ? "noRecords" : "records", records.isEmpty ? "no SRV records on port 443" : "\(records.count) record(s)",
                    watch.elapsedMs)
                for srv in records where remaining > 0 {
                    let result = await probe(url: AutodiscoverRules.srvCandidate(srv), viaRedirect: true)
                    results.append(result)
                    if result.isChallenge { break }
                }
            } catch {
                record(name, "SRV", { if case .timeout = error { "timeout" } else { "unreachable" } }(), error.description, watch.elapsedMs)
            }
        }
        return try conclude(results)
    }

    /// Both https candidates at once, a challenge decisive by priority as in Autodiscover.
    func concurrently(_ urls: [String]) async -> [Result] {
        await AutodiscoverRules.byPriority(urls, isDecisive: \.isChallenge) { url in
            await self.probe(url: url, viaRedirect: false)
        }
    }

    /// GET http://autodiscover.DOMAIN/… with no Authorization; only an https redirect is followed.
    func httpRedirect() async -> Result? {
        let url = AutodiscoverRules.httpRedirectCandidate(domain: domain)
        let timeout = min(settings.attemptTimeoutSeconds, remaining)
        guard timeout > 0 else { return nil }
        let watch = Stopwatch()
        let response: HTTPResponse
        do {
            response = try await settings.client.send(HTTPRequest(method: "GET", url: url, timeoutSeconds: timeout, maxResponseBytes: 65536))
        } catch {
            record(url, "GET", error.outcome, error.description, watch.elapsedMs)
            return .failed(error)
        }
        guard AutodiscoverRules.redirectStatuses.contains(response.status), let location = response.headers["Location"] else {
            record(url, "GET", "httpStatus", "HTTP \(response.status), no redirect", watch.elapsedMs)
            return .noNTLM(url: url, detail: "HTTP \(response.status), no redirect")
        }
        guard RequestTarget.httpsHost(of: location) != nil else {
            record(url, "GET", "rejected", "redirect to \(location) is not https; not followed", watch.elapsedMs)
            return .rejected
        }
        record(url, "GET", "httpRedirect", "HTTP \(response.status) to \(location)", watch.elapsedMs)
        guard countRedirect() else { return .rejected }
        return await probe(url: location, viaRedirect: true)
    }

    // MARK: - One endpoint

    /// GET with the anonymous NEGOTIATE; a 401 with a challenge is read, a Negotiate-only
    /// server is asked again with the SPNEGO form, an allowed https redirect is followed.
    func probe(url: String, viaRedirect: Bool, followRedirects: Bool = true) async -> Result {
        guard let host = RequestTarget.httpsHost(of: url) else {
            record(url, "GET", "rejected", "not an https URL; the NTLM probe goes only over https", 0)
            return .rejected
        }
        if viaRedirect, !AutodiscoverRules.isAllowed(host, domain: domain, allowed: allowed) {
            record(url, "GET", "rejected", "\(host) is outside \(domain); needs confirmation", 0)
            return .needsConfirmation(host: host)
        }
        guard state.withLock({ $0.seen.insert(url.lowercased()).inserted }) else {
            record(url, "GET", "rejected", "already asked (a redirect loop)", 0)
            return .rejected
        }
        let first: HTTPResponse
        let watch = Stopwatch()
        do {
            first = try await send(url: url, host: host, authorization: "NTLM " + Base64.encodeToString(bytes: NTLMNegotiate.message))
        } catch {
            let detail = error == .cancelled ? "abandoned: a higher-priority candidate answered" : error.description
            record(url, "GET", error.outcome, detail, watch.elapsedMs)
            return .failed(error)
        }
        if followRedirects, AutodiscoverRules.redirectStatuses.contains(first.status), let location = first.headers["Location"] {
            record(url, "GET", "httpRedirect", "HTTP \(first.status) to \(location)", watch.elapsedMs)
            guard countRedirect() else { return .rejected }
            return await probe(url: location, viaRedirect: true)
        }
        guard first.status == 401 else {
            let detail = first.status == 200 ? "HTTP 200 without authentication" : "HTTP \(first.status)"
            record(url, "GET", "httpStatus", detail, watch.elapsedMs)
            return .noNTLM(url: url, detail: detail)
        }
        let offered = Self.schemes(first)
        if let token = Self.token(first, scheme: "ntlm") ?? Self.token(first, scheme: "negotiate") {
            return read(token, url: url, scheme: Self.token(first, scheme: "ntlm") != nil ? "ntlm" : "negotiate", ms: watch.elapsedMs)
        }
        guard offered.contains("negotiate") else {
            let names = offered.isEmpty ? "no scheme" : offered.sorted().joined(separator: ", ")
            let detail = offered.contains("ntlm") ? "offers NTLM but answered the NEGOTIATE with no challenge" : "offers \(names), not NTLM or Negotiate"
            record(url, "GET", "noNTLM", detail, watch.elapsedMs)
            return .noNTLM(url: url, detail: detail)
        }
        // Negotiate only: the same NEGOTIATE inside SPNEGO, on the same connection.
        let second: HTTPResponse
        do {
            second = try await send(url: url, host: host, authorization: "Negotiate " + Base64.encodeToString(bytes: NTLMNegotiate.spnegoMessage))
        } catch {
            record(url, "GET", error.outcome, error.description, watch.elapsedMs)
            return .failed(error)
        }
        guard second.status == 401, let token = Self.token(second, scheme: "negotiate") else {
            let detail = "offers Negotiate but answered the SPNEGO NEGOTIATE with HTTP \(second.status) and no challenge"
            record(url, "GET", "noNTLM", detail, watch.elapsedMs)
            return .noNTLM(url: url, detail: detail)
        }
        return read(token, url: url, scheme: "negotiate", ms: watch.elapsedMs)
    }

    func read(_ token: [UInt8], url: String, scheme: String, ms: Int) -> Result {
        do {
            let challenge = try NTLMChallengeInfo.parse(httpToken: token)
            record(url, "GET", "ntlmChallenge", "domain \(challenge.netbiosDomain)" + (challenge.dnsDomain.map { " (\($0))" } ?? ""), ms)
            return .challenge(challenge, url: url, scheme: scheme)
        } catch {
            record(url, "GET", "invalidChallenge", error.description, ms)
            return .badChallenge(url: url, error)
        }
    }

    func send(url: String, host: String, authorization: String) async throws(HTTPError) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add("Authorization", authorization)
        var request = HTTPRequest(
            method: "GET", url: url, headers: headers, timeoutSeconds: max(0.001, min(settings.attemptTimeoutSeconds, remaining)),
            maxResponseBytes: 65536, pinnedCertificateSHA256: settings.pins(host))
        // NTLM and Negotiate are connection-bound; HTTP/2 servers refuse them.
        request.requireHTTP11 = true
        return try await settings.client.send(request)
    }

    func countRedirect() -> Bool {
        state.withLock { s in
            s.redirects += 1
            return s.redirects <= Autodiscover.maximumRedirects
        }
    }

    static func schemes(_ response: HTTPResponse) -> Set<String> {
        Set(response.headers.values(for: "WWW-Authenticate").compactMap { $0.split(separator: " ").first.map { $0.lowercased() } })
    }

    static func token(_ response: HTTPResponse, scheme: String) -> [UInt8]? {
        for value in response.headers.values(for: "WWW-Authenticate") {
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == scheme else { continue }
            let text = parts[1].filter { $0 != " " && $0 != "\t" }
            if let bytes = try? Base64.decode(string: String(text)), !bytes.isEmpty { return bytes }
        }
        return nil
    }

    // MARK: - The answer

    /// The first challenge in candidate order, else the error that says most.
    func conclude(_ results: [Result]) throws(RPCError) -> AccountHints {
        let attempts = self.attempts
        for case .challenge(let challenge, let url, let scheme) in results {
            progress("accountHints", "The server's domain is \(challenge.netbiosDomain).", 100)
            return AccountHints.from(challenge, email: email, probedUrl: url, scheme: scheme, attempts: attempts)
        }
        for case .failed(let error) in results {
            if case .certificateUntrusted = error { throw error.rpcError.with("attempts", attempts.json) }
        }
        for case .needsConfirmation(let host) in results {
            throw RPCError(
                .redirectNeedsConfirmation, "The way to the Exchange server leads to \(host), which is outside \(domain).",
                hint: "If \(host) is your organisation's Exchange server, ask again with allowRedirectHosts: [\"\(host)\"].",
                details: JSONObject([("host", .string(host)), ("attempts", attempts.json)]))
        }
        for case .badChallenge(let url, let defect) in results {
            throw RPCError(
                .hintsUnavailable, "The server at \(url) offers NTLM, but its challenge cannot be read: \(defect).",
                hint: "Ask the administrator for the Windows domain (the NetBIOS name, like CONTOSO).",
                details: JSONObject([("attempts", attempts.json)]))
        }
        let answered = results.compactMap { if case .noNTLM(let url, let detail) = $0 { (url, detail) } else { nil } }
        if let (url, detail) = answered.first {
            throw RPCError(
                .hintsUnavailable, "No allowed endpoint offers NTLM or Negotiate, so the domain cannot be read (\(url): \(detail)).",
                hint:
                    "Ask the administrator for the Windows domain (the NetBIOS name, like CONTOSO), or give the EWS URL (ewsUrl) if Autodiscover's endpoints are not the ones that offer NTLM.",
                details: JSONObject([("attempts", attempts.json)]))
        }
        for case .failed(let error) in results where error != .cancelled {
            throw error.rpcError.with("attempts", attempts.json)
        }
        throw RPCError(
            .hintsUnavailable, "No allowed endpoint offers NTLM or Negotiate, so the domain cannot be read.",
            hint: "Give the EWS URL (ewsUrl), like https://mail.contoso.com/EWS/Exchange.asmx.",
            details: JSONObject([("attempts", attempts.json)]))
    }
}
