import ConnectorCore
import DNS
import HTTP
import RPCCore
import Threading
import WizardContract

/// Finds a mailbox's EWS and OAB URLs with Autodiscover POX, in Microsoft's order:
///
/// 1. `https://DOMAIN/autodiscover/autodiscover.xml` and `https://autodiscover.DOMAIN/…`, probed at
///    once; the best answer by priority wins, and a candidate that hangs never holds up one that
///    answered (it gets a short grace, then is abandoned);
/// 2. the unauthenticated plain-http GET to `http://autodiscover.DOMAIN/…`, whose redirect is
///    followed only to https;
/// 3. DNS SRV `_autodiscover._tcp.DOMAIN` in RFC 2782 order, port 443 only.
///
/// Safety: candidates are built from the exact e-mail domain only (never `autodiscover.PARENT`
/// or a TLD); credentials go only to verified https; a redirect to a host outside the e-mail's
/// domain stops with `redirectNeedsConfirmation` unless the caller allowed that host; at most
/// 10 redirects of every kind together, and the same (URL, address) pair or an address seen
/// twice ends that path.
///
/// Learned once per organization: when another profile of the same e-mail domain already found
/// its Autodiscover endpoint, that URL is asked first (`knownEndpoint`), so the candidates that
/// failed for the organization are not walked again. Its answer is still this address's own
/// (Autodiscover answers per address, protocols.md §7.1); when it fails, the walk runs as usual.
public struct Autodiscover: Sendable {
    public struct Outcome: Sendable {
        public var ewsUrl: String
        public var oabUrl: String?
        /// The Autodiscover URL that answered with the settings.
        public var autodiscoverUrl: String
        public var attempts: [AutodiscoverAttempt]
    }

    public static let maximumRedirects = 10

    let client: any HTTPTransport
    let resolver: SRVResolver
    /// The whole run ends within this many seconds (all candidates dead included).
    let budgetSeconds: Double
    /// One request never takes longer than this.
    let attemptTimeoutSeconds: Double
    let pins: @Sendable (String) -> [String]

    public init(
        client: any HTTPTransport, resolver: SRVResolver, budgetSeconds: Double = 15, attemptTimeoutSeconds: Double = 10,
        pins: @escaping @Sendable (String) -> [String] = { _ in [] }
    ) {
        self.client = client
        self.resolver = resolver
        self.budgetSeconds = budgetSeconds
        self.attemptTimeoutSeconds = attemptTimeoutSeconds
        self.pins = pins
    }

    public func run(
        account: ExchangeAccount, allowRedirectHosts: [String], knownEndpoint: String? = nil, progress: @escaping ProgressReporter
    ) async throws(AutodiscoverFailure) -> Outcome {
        guard let domain = EmailAddress.domain(of: account.email) else {
            throw AutodiscoverFailure(error: .invalidParams(field: "email", "'email' must be an e-mail address."), attempts: [])
        }
        let run = AutodiscoverRun(
            settings: self, account: account, originalDomain: domain,
            allowed: Set(allowRedirectHosts.map { $0.lowercased() }), knownEndpoint: knownEndpoint, progress: progress)
        do {
            return try await run.start()
        } catch {
            throw AutodiscoverFailure(error: error, attempts: run.attempts)
        }
    }
}

/// Where Autodiscover may look and where it may follow a redirect: shared by Autodiscover and
/// AccountHintsProbe, so the anonymous NTLM probe goes nowhere Autodiscover would not.
public enum AutodiscoverRules {
    /// Starts every candidate at once. When a lower-priority one is decisive first, higher-priority
    /// ones still running get a short grace (a fifth of the time so far, at most 2 s) and are then
    /// abandoned, so a hanging candidate costs at most 1.2 times the answer's own latency.
    /// Results in priority order, abandoned ones left out.
    static func byPriority<Result: Sendable>(
        _ urls: [String], isDecisive: @escaping @Sendable (Result) -> Bool, attempt: @escaping @Sendable (String) async -> Result
    ) async -> [Result] {
        let started = monotonicSeconds()
        var results = [Result?](repeating: nil, count: urls.count)
        await withTaskGroup(of: (Int, Result?).self) { group in
            for (i, url) in urls.enumerated() {
                group.addTask { (i, await attempt(url)) }
            }
            var graceStarted = false
            while let (index, result) = await group.next() {
                if index >= 0 { results[index] = result }
                if let best = results.firstIndex(where: { $0.map(isDecisive) == true }) {
                    let higherPending = (0..<best).contains { results[$0] == nil }
                    if !higherPending || index == -1 { break }
                    if !graceStarted {
                        graceStarted = true
                        let grace = min(2, 0.2 * (monotonicSeconds() - started))
                        group.addTask {
                            try? await sleep(seconds: grace)
                            return (-1, nil)
                        }
                    }
                } else if results.allSatisfy({ $0 != nil }) {
                    break
                }
            }
            group.cancelAll()
        }
        return results.compactMap { $0 }
    }

    /// Step 1, in priority order: built from the exact e-mail domain only.
    public static func httpsCandidates(domain: String) -> [String] {
        ["https://\(domain)/autodiscover/autodiscover.xml", "https://autodiscover.\(domain)/autodiscover/autodiscover.xml"]
    }

    /// Step 2: the unauthenticated plain-http GET whose redirect is followed only to https.
    public static func httpRedirectCandidate(domain: String) -> String {
        "http://autodiscover.\(domain)/autodiscover/autodiscover.xml"
    }

    /// Step 3: DNS SRV, port 443 only; its targets count as redirects (the host rule applies).
    public static func srvName(domain: String) -> String { "_autodiscover._tcp.\(domain)" }

    public static func isUsable(_ record: SRVRecord) -> Bool { record.port == 443 }

    public static func srvCandidate(_ record: SRVRecord) -> String {
        "https://\(record.target.lowercased())/autodiscover/autodiscover.xml"
    }

    /// A redirect may go to the e-mail domain, its subdomains, or a host the caller confirmed.
    public static func isAllowed(_ host: String, domain: String, allowed: Set<String>) -> Bool {
        let host = host.lowercased()
        return host == domain || host.hasSuffix("." + domain) || allowed.contains(host)
    }

    public static let redirectStatuses: Set<Int> = [301, 302, 303, 307, 308]
}

/// Autodiscover did not find the endpoints: the contract's error (which carries the attempts
/// for the client) and the attempts themselves, typed, for the caller.
public struct AutodiscoverFailure: Error, Sendable {
    public var error: RPCError
    public var attempts: [AutodiscoverAttempt]
}

/// The state of one discovery: the attempt log, redirect count, what was seen.
final class AutodiscoverRun: Sendable {
    let settings: Autodiscover
    let account: ExchangeAccount
    let originalDomain: String
    let allowed: Set<String>
    let knownEndpoint: String?
    let progress: ProgressReporter
    let deadline: Double
    private let state = MutexBox(State())

    struct State {
        var attempts: [AutodiscoverAttempt] = []
        var redirects = 0
        /// "URL address" pairs: a restart for a new address (redirectAddr) asks the same URLs
        /// again, which is not a loop (protocols.md §7.1).
        var seenRequests: Set<String> = []
        var seenAddresses: Set<String> = []
    }

    init(
        settings: Autodiscover, account: ExchangeAccount, originalDomain: String, allowed: Set<String>, knownEndpoint: String?,
        progress: @escaping ProgressReporter
    ) {
        self.settings = settings
        self.account = account
        self.originalDomain = originalDomain
        self.allowed = allowed
        self.knownEndpoint = knownEndpoint
        self.progress = progress
        self.deadline = monotonicSeconds() + settings.budgetSeconds
    }

    /// What one candidate came to.
    enum CandidateResult: Sendable {
        case settings(ewsUrl: String, oabUrl: String?, from: String)
        case redirectAddr(String)
        case needsConfirmation(host: String)
        case failed(Failure)

        var isDecisive: Bool {
            if case .failed = self { return false }
            return true
        }
    }

    enum Failure: Sendable {
        case unauthorized
        case certificate(RPCError)
        /// Refused with a reason of its own (clockSkew, channelBindingRequired, the KDC refusing
        /// the password): that error, not a generic one, is what the user sees.
        case refused(RPCError)
        case other
    }

    var remaining: Double { deadline - monotonicSeconds() }

    func record(url: String, method: String, outcome: String, detail: String, durationMs: Int) {
        let attempt = AutodiscoverAttempt(url: url, method: method, outcome: outcome, detail: detail, durationMs: durationMs)
        state.withLock { $0.attempts.append(attempt) }
        progress("autodiscover", "\(method) \(url): \(detail) (\(durationMs) ms)", nil)
    }

    var attempts: [AutodiscoverAttempt] { state.withLock { $0.attempts } }

    func isAllowed(_ host: String) -> Bool {
        AutodiscoverRules.isAllowed(host, domain: originalDomain, allowed: allowed)
    }

    /// Counts a redirect; false once the limit is passed.
    func countRedirect() -> Bool {
        state.withLock { s in
            s.redirects += 1
            return s.redirects <= Autodiscover.maximumRedirects
        }
    }

    func firstVisit(url: String, address: String) -> Bool {
        state.withLock { $0.seenRequests.insert(url.lowercased() + " " + address.lowercased()).inserted }
    }

    /// Takes a request back out of the loop set: the known endpoint asked first may be asked
    /// again in its place in the walk.
    func forgetVisit(url: String, address: String) {
        _ = state.withLock { $0.seenRequests.remove(url.lowercased() + " " + address.lowercased()) }
    }

    func firstVisit(address: String) -> Bool {
        state.withLock { $0.seenAddresses.insert(address.lowercased()).inserted }
    }

    // MARK: - The phases

    func start() async throws(RPCError) -> Autodiscover.Outcome {
        var email = account.email
        _ = firstVisit(address: email)
        var failures: [Failure] = []
        while true {
            guard let domain = EmailAddress.domain(of: email) else { throw failed(failures) }
            progress("autodiscover", "Looking for the Exchange server of \(domain).", 5)
            var result = await askKnownEndpointFirst(email: email, domain: domain, failures: &failures)
            if result == nil { result = try await discover(email: email, domain: domain, failures: &failures) }
            switch result {
            case .settings(let ews, let oab, let from)?:
                progress("autodiscover", "Found EWS at \(ews).", 100)
                return Autodiscover.Outcome(ewsUrl: ews, oabUrl: oab, autodiscoverUrl: from, attempts: attempts)
            case .redirectAddr(let next)?:
                // A new address restarts discovery; its domain must pass the same host rule.
                guard let nextDomain = EmailAddress.domain(of: next) else { throw failed(failures) }
                if !isAllowed(nextDomain) && !isAllowed("autodiscover." + nextDomain) {
                    throw needsConfirmation(host: nextDomain)
                }
                guard countRedirect() else { throw failed(failures, reason: "more than \(Autodiscover.maximumRedirects) redirects") }
                guard firstVisit(address: next) else { throw failed(failures, reason: "the redirects go round in a circle") }
                email = next
            case .needsConfirmation(let host)?:
                throw needsConfirmation(host: host)
            case .failed?, nil:
                throw failed(failures)
            }
        }
    }

    /// The endpoint another profile of this organization found, for the address the run started
    /// with; only when its host passes the same host rule as any candidate (no confirmation is
    /// borrowed from another profile). Nil when there is none or it told nothing decisive.
    func askKnownEndpointFirst(email: String, domain: String, failures: inout [Failure]) async -> CandidateResult? {
        guard let known = knownEndpoint, email.lowercased() == account.email.lowercased(),
            let host = RequestTarget.httpsHost(of: known), isAllowed(host)
        else { return nil }
        progress("autodiscover", "Asking \(known) first: it answered for another mailbox of \(domain).", 5)
        let result = await post(url: known, email: email, viaRedirect: false)
        if result.isDecisive { return result }
        if case .failed(let failure) = result { failures.append(failure) }
        forgetVisit(url: known, address: email)
        return nil
    }

    /// One pass over the candidates for one address.
    func discover(email: String, domain: String, failures: inout [Failure]) async throws(RPCError) -> CandidateResult? {
        // 1. Both https candidates at once.
        let candidates = AutodiscoverRules.httpsCandidates(domain: domain)
        let first = await probeConcurrently(candidates, email: email)
        if let decisive = first.first(where: \.isDecisive) { return decisive }
        failures += first.compactMap { if case .failed(let f) = $0 { f } else { nil } }
        guard budgetLeft(for: AutodiscoverRules.httpRedirectCandidate(domain: domain), method: "GET") else { return nil }

        // 2. Unauthenticated GET over plain http; only an https redirect is followed.
        progress("autodiscover", "Trying the http redirect of autodiscover.\(domain).", 50)
        let viaRedirect = await httpRedirectProbe(domain: domain, email: email)
        if let viaRedirect, viaRedirect.isDecisive { return viaRedirect }
        if case .failed(let f)? = viaRedirect { failures.append(f) }
        guard budgetLeft(for: AutodiscoverRules.srvName(domain: domain), method: "SRV") else { return nil }

        // 3. DNS SRV.
        progress("autodiscover", "Looking up _autodiscover._tcp.\(domain).", 75)
        for result in await srvProbe(domain: domain, email: email) {
            if result.isDecisive { return result }
            if case .failed(let f) = result { failures.append(f) }
        }
        return nil
    }

    /// False once the budget is spent; the step that is not tried is still reported.
    func budgetLeft(for url: String, method: String) -> Bool {
        guard remaining <= 0 else { return true }
        record(url: url, method: method, outcome: "timeout", detail: "not tried: the Autodiscover time budget is used up", durationMs: 0)
        return false
    }

    func probeConcurrently(_ urls: [String], email: String) async -> [CandidateResult] {
        await AutodiscoverRules.byPriority(urls, isDecisive: \.isDecisive) { url in
            await self.post(url: url, email: email, viaRedirect: false)
        }
    }

    /// An authenticated POX POST, following redirectUrl answers and HTTP redirects under the rules.
    func post(url: String, email: String, viaRedirect: Bool) async -> CandidateResult {
        // The host libcurl will connect to (its own URL parser), not a second reading of the text.
        guard let host = RequestTarget.httpsHost(of: url) else {
            record(url: url, method: "POST", outcome: "rejected", detail: "not an https URL; credentials are only sent over https", durationMs: 0)
            return .failed(.other)
        }
        if viaRedirect, !isAllowed(host) {
            record(url: url, method: "POST", outcome: "rejected", detail: "\(host) is outside \(originalDomain); needs confirmation", durationMs: 0)
            return .needsConfirmation(host: host)
        }
        guard firstVisit(url: url, address: email) else {
            record(url: url, method: "POST", outcome: "rejected", detail: "already tried for \(email) (a redirect loop)", durationMs: 0)
            return .failed(.other)
        }
        let timeout = min(settings.attemptTimeoutSeconds, remaining)
        guard timeout > 0 else {
            record(url: url, method: "POST", outcome: "timeout", detail: "the Autodiscover time budget is used up", durationMs: 0)
            return .failed(.other)
        }
        var headers = HTTPHeaders()
        headers.add("Content-Type", "text/xml; charset=utf-8")
        let request = HTTPRequest(
            method: "POST", url: url, headers: headers, body: POX.requestBody(email: email),
            timeoutSeconds: timeout, maxResponseBytes: 1 << 20,
            pinnedCertificateSHA256: settings.pins(host))
        let watch = Stopwatch()
        let response: HTTPResponse
        let scheme: String
        do {
            // The same integrated-auth path as EWS: Kerberos or NTLMv2, channel-bound to this
            // connection's certificate; Basic only where it is the only offer.
            let outcome = try await ExchangeAuthentication.send(request, account: account, client: settings.client)
            response = outcome.response
            scheme = outcome.scheme == .none ? "" : " (\(outcome.scheme.label))"
        } catch {
            switch error {
            case .transport(let error):
                let detail = error == .cancelled ? "abandoned: a higher-priority candidate answered" : error.description
                record(url: url, method: "POST", outcome: error.outcome, detail: detail, durationMs: watch.elapsedMs)
                if case .certificateUntrusted = error { return .failed(.certificate(error.rpcError)) }
                return .failed(.other)
            case .refused(let error):
                let outcome = error.kind == .invalidCredentials ? "unauthorized" : error.kind.name
                record(url: url, method: "POST", outcome: outcome, detail: error.message, durationMs: watch.elapsedMs)
                return .failed(.refused(error))
            }
        }
        let ms = watch.elapsedMs
        switch response.status {
        case 200:
            switch POX.parse(response.body) {
            case .success(.settings(let ews, let oab)):
                record(url: url, method: "POST", outcome: "settings", detail: "EWS \(ews)\(scheme)", durationMs: ms)
                return .settings(ewsUrl: ews, oabUrl: oab, from: url)
            case .success(.redirectAddr(let address)):
                record(url: url, method: "POST", outcome: "redirectAddr", detail: "use the address \(address)", durationMs: ms)
                return .redirectAddr(address)
            case .success(.redirectUrl(let next)):
                record(url: url, method: "POST", outcome: "redirectUrl", detail: "ask \(next)", durationMs: ms)
                guard countRedirect() else { return .failed(.other) }
                return await post(url: next, email: email, viaRedirect: true)
            case .success(.error(let code, let message)):
                record(url: url, method: "POST", outcome: "autodiscoverError", detail: "error \(code): \(message)", durationMs: ms)
                return .failed(.other)
            case .failure(let failure):
                record(url: url, method: "POST", outcome: "invalidResponse", detail: "\(failure)", durationMs: ms)
                return .failed(.other)
            }
        case 301, 302, 303, 307, 308:
            guard let location = response.headers["Location"] else {
                record(url: url, method: "POST", outcome: "invalidResponse", detail: "HTTP \(response.status) without a Location", durationMs: ms)
                return .failed(.other)
            }
            record(url: url, method: "POST", outcome: "httpRedirect", detail: "HTTP \(response.status) to \(location)", durationMs: ms)
            guard countRedirect() else { return .failed(.other) }
            return await post(url: location, email: email, viaRedirect: true)
        case 401:
            record(url: url, method: "POST", outcome: "unauthorized", detail: "HTTP 401: the server did not accept the credentials", durationMs: ms)
            return .failed(.unauthorized)
        default:
            record(url: url, method: "POST", outcome: "httpStatus", detail: "HTTP \(response.status)", durationMs: ms)
            return .failed(.other)
        }
    }

    /// GET http://autodiscover.DOMAIN/… without credentials; a redirect to https is POSTed to.
    func httpRedirectProbe(domain: String, email: String) async -> CandidateResult? {
        let url = AutodiscoverRules.httpRedirectCandidate(domain: domain)
        let timeout = min(settings.attemptTimeoutSeconds, remaining)
        guard timeout > 0 else { return nil }
        let watch = Stopwatch()
        let response: HTTPResponse
        do {
            response = try await settings.client.send(HTTPRequest(method: "GET", url: url, timeoutSeconds: timeout, maxResponseBytes: 65536))
        } catch {
            record(url: url, method: "GET", outcome: error.outcome, detail: error.description, durationMs: watch.elapsedMs)
            return .failed(.other)
        }
        guard [301, 302, 303, 307, 308].contains(response.status), let location = response.headers["Location"] else {
            record(url: url, method: "GET", outcome: "httpStatus", detail: "HTTP \(response.status), no redirect", durationMs: watch.elapsedMs)
            return .failed(.other)
        }
        guard RequestTarget.httpsHost(of: location) != nil else {
            record(url: url, method: "GET", outcome: "rejected", detail: "redirect to \(location) is not https; not followed", durationMs: watch.elapsedMs)
            return .failed(.other)
        }
        record(url: url, method: "GET", outcome: "httpRedirect", detail: "HTTP \(response.status) to \(location)", durationMs: watch.elapsedMs)
        guard countRedirect() else { return .failed(.other) }
        return await post(url: location, email: email, viaRedirect: true)
    }

    func srvProbe(domain: String, email: String) async -> [CandidateResult] {
        let name = AutodiscoverRules.srvName(domain: domain)
        let watch = Stopwatch()
        let records: [SRVRecord]
        do {
            records = try await settings.resolver.lookup(name, deadline: deadline)
        } catch {
            let outcome = if case .timeout = error { "timeout" } else { "unreachable" }
            record(url: name, method: "SRV", outcome: outcome, detail: error.description, durationMs: watch.elapsedMs)
            return []
        }
        let usable = records.filter(AutodiscoverRules.isUsable)
        record(
            url: name, method: "SRV", outcome: usable.isEmpty ? "noRecords" : "records",
            detail: usable.isEmpty ? "no SRV records on port 443" : usable.map { "\($0.target):\($0.port)" }.joined(separator: ", "),
            durationMs: watch.elapsedMs)
        var results: [CandidateResult] = []
        for record in usable {
            guard remaining > 0 else { break }
            let result = await post(url: AutodiscoverRules.srvCandidate(record), email: email, viaRedirect: true)
            results.append(result)
            if result.isDecisive { break }
        }
        return results
    }

    // MARK: - Errors

    func needsConfirmation(host: String) -> RPCError {
        RPCError(
            .redirectNeedsConfirmation, "Autodiscover wants to continue at \(host), which is outside \(originalDomain).",
            hint: "If \(host) is your organisation's Exchange server, submit again with allowRedirectHosts: [\"\(host)\"].",
            details: JSONObject([("host", .string(host)), ("attempts", attempts.json)]))
    }

    func failed(_ failures: [Failure], reason: String? = nil) -> RPCError {
        let attempts = self.attempts
        // A certificate problem is the one thing the user can fix right here.
        for case .certificate(let error) in failures {
            return error.with("attempts", attempts.json)
        }
        for case .refused(let error) in failures {
            return error.with("attempts", attempts.json)
        }
        let unauthorized = failures.filter { if case .unauthorized = $0 { true } else { false } }.count
        if unauthorized > 0, unauthorized == attempts.filter({ $0.outcome == "unauthorized" || $0.outcome == "settings" }).count {
            return RPCError(
                .invalidCredentials, "The Exchange server did not accept the user name and password.",
                hint: ExchangeHints.userNameForms, details: JSONObject([("attempts", attempts.json)]))
        }
        let why = reason.map { " (\($0))" } ?? ""
        return RPCError(
            .autodiscoverFailed, "Autodiscover found no Exchange Web Services URL for \(account.email)\(why).",
            hint: "Enter the EWS URL (like https://mail.contoso.com/EWS/Exchange.asmx) and the Offline Address Book URL with overrideEndpoints.",
            details: JSONObject([("attempts", attempts.json)]))
    }
}
