import ConnectorCore
import DNS
import EWS
import HTTP
import RPCCore
import Threading
import WizardContract

/// The path to an on-premises Exchange, step by step, from where syncwizard runs: DNS, TCP,
/// TLS and the authentication schemes of every Autodiscover candidate and endpoint host, then
/// Autodiscover, EWS (and the server's version), impersonation, the OAB and the account hints.
/// It reuses the connection test's requests (EWSConnectionTest, Autodiscover, AccountHintsProbe)
/// and their error mapping; what it adds is the layer below them and the explanation.
public struct ExchangeDiagnosis: Sendable {
    /// What the profile holds; `password` nil when the keyring has none.
    public struct Profile: Sendable {
        public var userName: String?
        public var domain: String?
        public var email: String?
        public var password: String?
        public var impersonateMailbox: String?
        public var endpoints: EndpointSettings

        public init(userName: String?, domain: String?, email: String?, password: String?, impersonateMailbox: String?, endpoints: EndpointSettings) {
            self.userName = userName
            self.domain = domain
            self.email = email
            self.password = password
            self.impersonateMailbox = impersonateMailbox
            self.endpoints = endpoints
        }

        var account: ExchangeAccount? {
            guard let userName, let email, let password else { return nil }
            return ExchangeAccount(userName: userName, domain: domain, email: email, password: password, impersonateMailbox: impersonateMailbox)
        }
    }

    let client: any HTTPTransport
    let prober: (any ConnectionProbing)?
    let resolver: SRVResolver
    let stepTimeoutSeconds: Double
    let autodiscoverBudgetSeconds: Double
    /// Hosts (lower case) that --connect-to sends elsewhere: their DNS answer does not matter.
    let redirectedHosts: Set<String>
    let pins: @Sendable (String) -> [String]
    let now: @Sendable () -> Double

    public init(
        client: any HTTPTransport, prober: (any ConnectionProbing)?, resolver: SRVResolver, stepTimeoutSeconds: Double,
        autodiscoverBudgetSeconds: Double, redirectedHosts: Set<String>, pins: @escaping @Sendable (String) -> [String],
        now: @escaping @Sendable () -> Double
    ) {
        self.client = client
        self.prober = prober
        self.resolver = resolver
        self.stepTimeoutSeconds = stepTimeoutSeconds
        self.autodiscoverBudgetSeconds = autodiscoverBudgetSeconds
        self.redirectedHosts = redirectedHosts
        self.pins = pins
        self.now = now
    }

    public func run(_ profile: Profile, into run: inout DiagnosisRun) async {
        await run.step("exchange.profile", "The profile's Exchange settings") { evidence throws(RPCError) in
            evidence["userName"] = profile.userName.map(JSONValue.string)
            evidence["domain"] = profile.domain.map(JSONValue.string)
            evidence["email"] = profile.email.map(JSONValue.string)
            evidence["ewsUrl"] = profile.endpoints.ewsUrl.map(JSONValue.string)
            evidence["oabUrl"] = profile.endpoints.oabUrl.map(JSONValue.string)
            evidence["endpointSource"] = profile.endpoints.source.map { .string($0.rawValue) }
            evidence["impersonateMailbox"] = profile.impersonateMailbox.map(JSONValue.string)
            evidence["hasPassword"] = .bool(profile.password != nil)
            guard profile.email != nil, profile.userName != nil else {
                throw RPCError(
                    .notSignedIn, "The profile has no Exchange user name and e-mail address yet.",
                    hint: "Enter the user name, domain, e-mail address and password (submitExchangeCredentials).")
            }
            guard profile.password != nil else {
                throw RPCError(
                    .notSignedIn, "The Exchange password is missing from the keyring.", hint: "Enter the credentials again (submitExchangeCredentials).")
            }
            return .pass("User name, e-mail address and password are set; the EWS URL comes from \(profile.endpoints.source?.rawValue ?? "nowhere yet").")
        }
        guard let email = profile.email, let domain = EmailAddress.domain(of: email) else { return }

        var srvTargets: [String] = []
        await run.step("exchange.dns.srv", "DNS SRV record \(AutodiscoverRules.srvName(domain: domain))") { evidence throws(RPCError) in
            let records: [SRVRecord]
            do throws(DNSError) {
                records = try await resolver.lookup(AutodiscoverRules.srvName(domain: domain), deadline: monotonicSeconds() + stepTimeoutSeconds)
            } catch {
                return .warn(
                    error.isTimeout ? .timeout : .hostUnreachable, "The SRV lookup failed: \(error.description).",
                    remediation: "Check the DNS server (--dns-server, /etc/resolv.conf); the SRV record is Autodiscover's last resort.")
            }
            evidence["records"] = .array(records.map { .string("\($0.priority) \($0.weight) \($0.port) \($0.target)") })
            srvTargets = records.filter(AutodiscoverRules.isUsable).map { $0.target.lowercased() }
            return .pass(records.isEmpty ? "No SRV record is published (optional)." : "\(records.count) SRV record(s), \(srvTargets.count) on port 443.")
        }

        for candidate in candidateHosts(domain: domain, srvTargets: srvTargets, endpoints: profile.endpoints) {
            await network(candidate, into: &run)
        }
        await services(profile, email: email, into: &run)
    }

    // MARK: - Hosts

    struct Candidate {
        var host: String
        var port: Int
        /// The URL whose authentication schemes are read (an unauthenticated request).
        var url: String
        /// EWS or OAB live here: a problem is a failure. On an Autodiscover candidate it is a
        /// warning (other candidates may answer).
        var inUse: Bool
    }

    func candidateHosts(domain: String, srvTargets: [String], endpoints: EndpointSettings) -> [Candidate] {
        var list: [Candidate] = []
        func add(_ url: String, inUse: Bool) {
            guard let host = RequestTarget.httpsHost(of: url), let port = try? RequestTarget(url: url).port else { return }
            let candidate = Candidate(host: host, port: port, url: url, inUse: inUse)
            if let index = list.firstIndex(where: { $0.host == host && $0.port == port }) {
                if inUse && !list[index].inUse { list[index] = candidate }
                return
            }
            list.append(candidate)
        }
        for url in AutodiscoverRules.httpsCandidates(domain: domain) { add(url, inUse: false) }
        for target in srvTargets { add("https://\(target)/autodiscover/autodiscover.xml", inUse: false) }
        if let ews = endpoints.ewsUrl { add(ews, inUse: true) }
        if let oab = endpoints.oabUrl { add(oab, inUse: true) }
        return list
    }

    /// DNS, TCP, TLS and the offered schemes of one host.
    func network(_ candidate: Candidate, into run: inout DiagnosisRun) async {
        let host = candidate.host
        let port = candidate.port
        // The step ids name the host, and the port when it is not 443.
        let at = port == 443 ? host : "\(host):\(port)"
        let redirected = redirectedHosts.contains(host)
        let role = candidate.inUse ? "" : " (Autodiscover candidate)"
        let soft = !candidate.inUse
        await run.step("exchange.dns@\(at)", "DNS A/AAAA of \(host)\(role)", failureIsWarning: soft) { evidence throws(RPCError) in
            let addresses: [String]
            do throws(DNSError) {
                addresses = try await resolver.addresses(of: host, deadline: monotonicSeconds() + stepTimeoutSeconds)
            } catch {
                if redirected { return .pass("\(host) is reached through --connect-to (its DNS lookup failed: \(error.description)).") }
                throw RPCError(
                    error.isTimeout ? .timeout : .hostUnreachable, "\(host) cannot be looked up: \(error.description).",
                    hint: "Check the DNS server (--dns-server, /etc/resolv.conf).", details: ["host": .string(host)])
            }
            evidence["addresses"] = .array(addresses.map(JSONValue.string))
            if redirected { evidence["connectTo"] = "--connect-to sends this host elsewhere" }
            guard !addresses.isEmpty || redirected else {
                throw RPCError(
                    .hostUnreachable, "\(host) has no A or AAAA record.",
                    hint: candidate.inUse
                        ? "Publish the host in DNS (split DNS: the internal server must know it), or override the EWS and OAB URLs with a name that resolves."
                        : "Nothing to do if another candidate answers; otherwise publish autodiscover.<domain> in DNS or override the EWS and OAB URLs.",
                    details: ["host": .string(host)])
            }
            return .pass(addresses.isEmpty ? "\(host) is reached through --connect-to." : "\(host) is \(addresses.joined(separator: ", ")).")
        }
        guard let prober else { return }
        let timeout = stepTimeoutSeconds
        await run.step("exchange.tcp@\(at)", "TCP connection to \(host):\(port)\(role)", after: ["exchange.dns@\(at)"], failureIsWarning: soft) {
            evidence throws(RPCError) in
            do throws(HTTPError) {
                let reached = try await prober.probeTCP(host: host, port: port, timeoutSeconds: timeout)
                evidence["remoteAddress"] = .string(reached.remoteAddress)
                evidence["remotePort"] = .int(reached.remotePort)
                evidence["connectMs"] = .int(reached.connectMs)
                return .pass("Connected to \(reached.remoteAddress) port \(reached.remotePort) in \(reached.connectMs) ms.")
            } catch {
                let failure: RPCError =
                    if case .timeout = error {
                        RPCError(
                            .timeout, "Nothing answered the TCP connection to \(host):\(port) within \(Int(timeout)) s.",
                            hint: "A firewall that drops packets looks like this: open port \(port) from this computer to \(host), or check the proxy.",
                            details: ["host": .string(host)])
                    } else {
                        error.rpcError
                    }
                throw failure
            }
        }
        await run.step("exchange.tls@\(at)", "TLS handshake and certificate of \(host)\(role)", after: ["exchange.tcp@\(at)"], failureIsWarning: soft) {
            evidence throws(RPCError) in
            let tls: TLSProbeResult
            do throws(HTTPError) {
                tls = try await prober.probeTLS(host: host, port: port, timeoutSeconds: timeout)
            } catch {
                let failure: RPCError =
                    if case .timeout = error {
                        RPCError(
                            .timeout, "The TLS handshake with \(host) did not complete within \(Int(timeout)) s, although the TCP connection was made.",
                            hint:
                                "Something between here and the server (a TLS-inspecting proxy, a load balancer, an IPS) or the server itself holds the handshake; check its TLS configuration and the devices in between.",
                            details: ["host": .string(host)])
                    } else {
                        error.rpcError
                    }
                throw failure
            }
            return try certificateFinding(tls, host: host, evidence: &evidence)
        }
        await run.step(
            "exchange.auth@\(at)", "Authentication schemes offered by \(host)\(role)", after: ["exchange.tls@\(at)"], failureIsWarning: soft
        ) { evidence throws(RPCError) in
            try await schemesFinding(candidate, evidence: &evidence)
        }
    }

    func certificateFinding(_ tls: TLSProbeResult, host: String, evidence: inout Evidence) throws(RPCError) -> StepFinding {
        let days = Int((Double(tls.notAfterEpoch) - now()) / 86_400)
        evidence["protocol"] = tls.protocolVersion.map(JSONValue.string)
        evidence["cipher"] = tls.cipher.map(JSONValue.string)
        evidence["subject"] = .string(tls.subject)
        evidence["issuer"] = .string(tls.issuer)
        evidence["subjectAltNames"] = .array(tls.subjectAltNames.map(JSONValue.string))
        evidence["notAfter"] = .string(tls.notAfter)
        evidence["expiresInDays"] = .int(days)
        evidence["sha256"] = .string(tls.sha256)
        evidence["chainVerified"] = .bool(tls.verified)
        let pinned = pins(host).contains { $0.lowercased().filter { $0 != ":" } == tls.sha256 }
        let version = tls.protocolVersion ?? "TLS"
        let details: JSONObject = ["host": .string(host), "sha256": .string(tls.sha256), "notAfter": .string(tls.notAfter)]
        if let failure = tls.verificationError, !pinned {
            let why: String
            if days < 0 {
                why = "it expired \(-days) day(s) ago (\(tls.notAfter))"
            } else if !tls.subjectAltNames.contains(where: { Self.name($0, matches: host) }) {
                why = "it is issued for \(tls.subjectAltNames.isEmpty ? tls.subject : tls.subjectAltNames.joined(separator: ", ")), not for \(host)"
            } else {
                why = "its chain does not lead to a trusted CA (issuer \(tls.issuer))"
            }
            throw RPCError(
                .certificateUntrusted, "The certificate of \(host) is not trusted: \(why) (\(failure)).",
                hint: days < 0
                    ? "Renew the server's certificate (Exchange admin center → Servers → Certificates) and assign it to IIS."
                    : "Give \(host) a certificate that names it and chains to a CA this computer trusts (or start syncwizard with --ca-file); after checking the SHA-256 fingerprint \(tls.sha256) you can pin it with trustCertificate.",
                details: details)
        }
        if days < 30 {
            return .warn(
                .certificateUntrusted, "The certificate of \(host) expires in \(days) day(s) (\(tls.notAfter)); \(version).",
                remediation: "Renew the certificate of \(host) before \(tls.notAfter); syncwizard stops connecting when it expires.")
        }
        if let protocolVersion = tls.protocolVersion, ["SSLv3", "TLSv1", "TLSv1.1"].contains(protocolVersion) {
            return .warn(
                .certificateUntrusted, "\(host) negotiates \(protocolVersion), which is deprecated (RFC 8996).",
                remediation: "Enable TLS 1.2 or later on \(host) (IIS Crypto or the SCHANNEL registry keys) and disable TLS 1.0/1.1.")
        }
        let trust = pinned && !tls.verified ? "not verified, but pinned by you (trustCertificate)" : "verified"
        return .pass("\(version), certificate for \(host) \(trust), valid for \(days) more days (until \(tls.notAfter)).")
    }

    /// RFC 6125 §6.4: exact match, or a wildcard as the whole left-most label.
    static func name(_ pattern: String, matches host: String) -> Bool {
        let pattern = pattern.lowercased()
        if pattern == host { return true }
        guard pattern.hasPrefix("*."), let dot = host.firstIndex(of: ".") else { return false }
        return String(host[dot...]) == String(pattern.dropFirst())
    }

    /// An unauthenticated request to the host's Autodiscover (or EWS/OAB) URL: its 401 lists
    /// the schemes. Nothing secret is sent.
    func schemesFinding(_ candidate: Candidate, evidence: inout Evidence) async throws(RPCError) -> StepFinding {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "text/xml; charset=utf-8")
        let request = HTTPRequest(
            method: "POST", url: candidate.url, headers: headers, body: [], timeoutSeconds: stepTimeoutSeconds, maxResponseBytes: 1 << 16,
            pinnedCertificateSHA256: pins(candidate.host))
        let response: HTTPResponse
        do throws(HTTPError) {
            response = try await client.send(request)
        } catch {
            throw error.rpcError
        }
        let offered = response.headers.values(for: "WWW-Authenticate").compactMap { $0.split(separator: " ").first.map(String.init) }
        var schemes: [String] = []
        for scheme in offered where !schemes.contains(where: { $0.lowercased() == scheme.lowercased() }) { schemes.append(scheme) }
        evidence["url"] = .string(candidate.url)
        evidence["status"] = .int(response.status)
        evidence["schemes"] = .array(schemes.map(JSONValue.string))
        let lower = Set(schemes.map { $0.lowercased() })
        guard response.status == 401 else {
            return .pass("\(candidate.url) answers HTTP \(response.status) without asking for credentials.")
        }
        if lower == ["basic"] {
            let internet = response.connection.remoteAddress.isEmpty ? nil : !Self.isPrivate(response.connection.remoteAddress)
            evidence["publicAddress"] = internet.map(JSONValue.bool)
            let over = internet == true ? " over the Internet (\(response.connection.remoteAddress) is a public address)" : ""
            return .warn(
                .weakAuthentication,
                "\(candidate.host) offers only Basic authentication\(over): the password goes with every request, and Exchange's Extended Protection cannot protect it.",
                remediation:
                    "Enable Windows authentication (NTLM and Negotiate) on the Autodiscover and EWS virtual directories (Set-WebServicesVirtualDirectory -WindowsAuthentication $true) and publish them only through a reverse proxy that pre-authenticates."
            )
        }
        guard lower.contains("ntlm") || lower.contains("negotiate") || lower.contains("basic") else {
            return .warn(
                .invalidCredentials,
                "\(candidate.host) asks for \(schemes.isEmpty ? "an unnamed scheme" : schemes.joined(separator: ", ")), none of which syncwizard speaks.",
                remediation: "Enable NTLM/Negotiate (Windows authentication) on the Exchange virtual directories.")
        }
        return .pass("\(candidate.host) offers \(schemes.joined(separator: ", ")).")
    }

    /// RFC 1918, loopback, link-local, CGNAT (RFC 6598), IPv6 ULA and link-local.
    static func isPrivate(_ address: String) -> Bool {
        let lower = address.lowercased()
        if lower.contains(":") {
            return lower == "::1" || lower.hasPrefix("fc") || lower.hasPrefix("fd") || lower.hasPrefix("fe80")
        }
        let octets = lower.split(separator: ".").compactMap { Int($0) }
        guard octets.count == 4 else { return false }
        switch (octets[0], octets[1]) {
        case (10, _), (127, _), (169, 254), (192, 168): return true
        case (172, 16...31), (100, 64...127): return true
        default: return false
        }
    }

    // MARK: - Services

    func services(_ profile: Profile, email: String, into run: inout DiagnosisRun) async {
        let account = profile.account
        let needsAccount = ["exchange.profile"]
        await run.step("exchange.autodiscover", "Autodiscover for \(email)", after: needsAccount) { evidence throws(RPCError) in
            guard let account else { return .skipped("No credentials.") }
            let allowed = [profile.endpoints.ewsUrl, profile.endpoints.discoveredAutodiscoverUrl].compactMap { $0.flatMap(RequestTarget.httpsHost(of:)) }
            let autodiscover = Autodiscover(
                client: client, resolver: resolver, budgetSeconds: autodiscoverBudgetSeconds, attemptTimeoutSeconds: stepTimeoutSeconds, pins: pins)
            do throws(AutodiscoverFailure) {
                let found = try await autodiscover.run(account: account, allowRedirectHosts: allowed) { _, _, _ in }
                evidence["ewsUrl"] = .string(found.ewsUrl)
                evidence["oabUrl"] = found.oabUrl.map(JSONValue.string)
                evidence["autodiscoverUrl"] = .string(found.autodiscoverUrl)
                evidence["attempts"] = found.attempts.json
                if let inForce = profile.endpoints.ewsUrl, inForce.lowercased() != found.ewsUrl.lowercased() {
                    return .pass("Autodiscover answers EWS \(found.ewsUrl); the profile uses \(inForce) (\(profile.endpoints.source?.rawValue ?? "set")).")
                }
                return .pass("\(found.autodiscoverUrl) answers: EWS \(found.ewsUrl)\(found.oabUrl.map { ", OAB \($0)" } ?? ", no OAB URL").")
            } catch {
                evidence["attempts"] = error.attempts.json
                let hint = (error.error.hint.map { $0 + " " } ?? "") + "You can override the EWS and OAB URLs (overrideEndpoints)."
                if profile.endpoints.source == .override {
                    return .warn(
                        error.error.kind, error.error.message + " The profile uses the overridden EWS URL, so the synchronizer does not depend on it.",
                        remediation: hint)
                }
                throw RPCError(error.error.kind, error.error.message, hint: hint, details: error.error.details)
            }
        }
        let test = EWSConnectionTest(client: client, timeoutSeconds: stepTimeoutSeconds, pins: pins)
        let ewsUrl = profile.endpoints.ewsUrl
        await run.step("exchange.ews", "EWS GetFolder of the calendar and the server's version", after: needsAccount) { evidence throws(RPCError) in
            guard var account, let ewsUrl else {
                throw RPCError(
                    .endpointInvalid, "The profile has no EWS URL.", hint: "Run Autodiscover (submitExchangeCredentials) or override the EWS and OAB URLs.",
                    details: ["field": "ewsUrl"])
            }
            account.impersonateMailbox = nil
            evidence["ewsUrl"] = .string(ewsUrl)
            let answer = try await test.calendarFolder(account: account, ewsUrl: ewsUrl)
            evidence["scheme"] = .string(answer.scheme)
            evidence["serverVersion"] = answer.version.map { .string($0.build) }
            evidence["schemaVersion"] = answer.version?.schema.map(JSONValue.string)
            if RequestTarget.httpsHost(of: ewsUrl) == EWS.exchangeOnlineHost {
                return .warn(
                    .endpointInvalid, answer.message + " " + EWS.exchangeOnlineRetirement,
                    remediation: "Use Microsoft 365 (Graph) as the calendar system for mailboxes in Exchange Online.")
            }
            return .pass(answer.message)
        }
        await run.step("exchange.impersonation", "Impersonation of the target mailbox", after: ["exchange.ews"]) { evidence throws(RPCError) in
            guard let account, let ewsUrl, let mailbox = account.impersonateMailbox else {
                return .skipped("The profile acts for no other mailbox (no impersonateMailbox).")
            }
            evidence["mailbox"] = .string(mailbox)
            return .pass(try await test.calendarFolder(account: account, ewsUrl: ewsUrl).message)
        }
        await run.step("exchange.oab", "The Offline Address Book manifest", after: needsAccount) { evidence throws(RPCError) in
            guard let account, let oabUrl = profile.endpoints.oabUrl else {
                return .warn(
                    .endpointInvalid, "The profile has no Offline Address Book URL.",
                    remediation: "Override the EWS and OAB URLs (overrideEndpoints with oabUrl from Get-OabVirtualDirectory), or make Autodiscover return it.")
            }
            evidence["oabUrl"] = .string(oabUrl)
            return .pass(try await test.checkOfflineAddressBook(account: account, oabUrl: oabUrl))
        }
        await run.step("exchange.accountHints", "The Windows domain in the server's NTLM challenge") { evidence throws(RPCError) in
            let probe = AccountHintsProbe(
                client: client, resolver: resolver, budgetSeconds: autodiscoverBudgetSeconds, attemptTimeoutSeconds: stepTimeoutSeconds, pins: pins)
            let hints = try await probe.discoverAccountHints(email: email, ewsUrl: ewsUrl)
            evidence["netbiosDomain"] = .string(hints.netbiosDomain)
            evidence["dnsDomain"] = hints.dnsDomain.map(JSONValue.string)
            evidence["forest"] = hints.forest.map(JSONValue.string)
            evidence["server"] = hints.server.map(JSONValue.string)
            evidence["windowsVersion"] = hints.windowsVersion.map(JSONValue.string)
            evidence["userNameForms"] = .array(hints.userNameForms.map(JSONValue.string))
            evidence["probedUrl"] = .string(hints.probedUrl)
            return Self.compare(hints, userName: profile.userName, domain: profile.domain)
        }
    }

    /// Does what the profile says match the domain the server names?
    static func compare(_ hints: AccountHints, userName: String?, domain: String?) -> StepFinding {
        let netbios = hints.netbiosDomain.lowercased()
        let dns = hints.dnsDomain?.lowercased()
        let typed = (domain ?? "").lowercased()
        let user = (userName ?? "").lowercased()
        let says = "The server is in the Windows domain \(hints.netbiosDomain)\(hints.dnsDomain.map { " (\($0))" } ?? "")"
        if !typed.isEmpty {
            if typed == netbios || typed == dns { return .pass("\(says); the profile's domain \(domain!) matches.") }
            return .warn(.invalidCredentials, "\(says), but the profile's domain is \(domain!).", remediation: hints.advice)
        }
        if let at = user.firstIndex(of: "@") {
            let suffix = String(user[user.index(after: at)...])
            if suffix == dns { return .pass("\(says); the user name \(userName!) is in that domain.") }
            return .warn(
                .invalidCredentials, "\(says), but the user name \(userName!) is in \(suffix): it works only if it is the account's UPN.",
                remediation: hints.advice)
        }
        return .warn(.invalidCredentials, "\(says), and the profile gives no domain for the user \(userName ?? "").", remediation: hints.advice)
    }
}

extension DNSError {
    var isTimeout: Bool {
        if case .timeout = self { return true }
        return false
    }
}
