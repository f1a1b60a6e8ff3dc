import ConnectorCore
import ExchangeConnector
import HTTP
import JSONRPC
import Keyring
import WizardProtocol

/// submitExchangeCredentials, overrideEndpoints and the Exchange side of testConnection.
/// The profile keeps user name, domain, e-mail and endpoints; the password lives in the keyring.
extension WizardService {
    enum ExchangeSetting {
        static let userName = "userName", domain = "domain", email = "email", impersonateMailbox = "impersonateMailbox"
        static let ewsUrl = "ewsUrl", oabUrl = "oabUrl", endpointSource = "endpointSource"
        static let discoveredEwsUrl = "discoveredEwsUrl", discoveredOabUrl = "discoveredOabUrl"
    }

    static let endpointSystems: Set<CalendarSystem> = [.exchange, .microsoft365]

    func requireCalendarSystem(_ profile: Profile, in systems: Set<CalendarSystem>, for what: String) throws(RPCError) -> CalendarSystem {
        guard let system = profile.calendarSystem, systems.contains(system) else {
            let names = systems.map(\.rawValue).sorted().joined(separator: " or ")
            let current = profile.calendarSystem.map { " (it is \($0.rawValue) now)" } ?? ""
            throw RPCError(.systemNotSelected, "Select \(names) as the profile's calendar system before \(what)\(current).",
                           hint: "Call selectCalendarSystem first.")
        }
        return system
    }

    func submitExchangeCredentials(_ params: SubmitExchangeCredentials.Params, context: RequestContext) async throws(RPCError) -> EndpointsResult {
        let profile = try await store.get(params.profileId)
        _ = try requireCalendarSystem(profile, in: [.exchange], for: "entering Exchange credentials")
        redactor.register(params.password)
        try await secrets.store(params.password, for: SecretKey(profile: params.profileId, system: .exchange, kind: .password))
        var updated = try await store.update(params.profileId) { profile in
            var c = profile.connection(for: .exchange)
            c.settings[ExchangeSetting.userName] = .string(params.userName)
            c.settings[ExchangeSetting.domain] = params.domain.map(JSONValue.string) ?? .null
            c.settings[ExchangeSetting.email] = .string(params.email)
            c.settings[ExchangeSetting.impersonateMailbox] = params.impersonateMailbox.map(JSONValue.string) ?? .null
            c.hasPassword = true
            c.lastTest = nil
            c.revision += 1
            profile.calendars[.exchange] = c
        }
        logger.info("Saved Exchange credentials of profile \(params.profileId).")
        guard params.autodiscover else {
            return endpoints(of: updated, autodiscover: (ok: false, attempts: []))
        }

        let account = ExchangeAccount(userName: params.userName, domain: params.domain, email: params.email,
                                      password: params.password, impersonateMailbox: params.impersonateMailbox)
        let autodiscover = Autodiscover(client: try network.http(), resolver: network.resolver,
                                        budgetSeconds: network.options.autodiscoverBudgetSeconds,
                                        pins: { [profile = updated] host in profile.pins(for: host) })
        do {
            let found = try await autodiscover.run(account: account, allowRedirectHosts: params.allowRedirectHosts) { stage, message, percent in
                context.progress(stage: stage, message: message, percent: percent)
            }
            updated = try await store.update(params.profileId) { profile in
                var c = profile.connection(for: .exchange)
                c.settings[ExchangeSetting.discoveredEwsUrl] = .string(found.ewsUrl)
                c.settings[ExchangeSetting.discoveredOabUrl] = found.oabUrl.map(JSONValue.string) ?? .null
                // A URL the user typed in stays in force until they change it.
                if c.settings[ExchangeSetting.endpointSource]?.stringValue != EndpointSource.override.rawValue {
                    c.settings[ExchangeSetting.ewsUrl] = .string(found.ewsUrl)
                    c.settings[ExchangeSetting.oabUrl] = found.oabUrl.map(JSONValue.string) ?? .null
                    c.settings[ExchangeSetting.endpointSource] = .string(EndpointSource.autodiscover.rawValue)
                    c.lastTest = nil
                    c.revision += 1
                }
                profile.calendars[.exchange] = c
            }
            return endpoints(of: updated, autodiscover: (ok: true, attempts: found.attempts))
        } catch {
            if error.kind == .cancelled { throw error }
            // With endpoints already in force (an override), a failed Autodiscover is a report,
            // not a failure of the call.
            if updated.connection(for: .exchange).settings[ExchangeSetting.ewsUrl]?.stringValue != nil {
                let attempts = (error.data["attempts"]?.arrayValue ?? []).compactMap(Self.attempt(from:))
                return endpoints(of: updated, autodiscover: (ok: false, attempts: attempts))
            }
            throw error
        }
    }

    static func attempt(from json: JSONValue) -> AutodiscoverAttempt? {
        guard let url = json["url"]?.stringValue, let method = json["method"]?.stringValue, let outcome = json["outcome"]?.stringValue else { return nil }
        return AutodiscoverAttempt(url: url, method: method, outcome: outcome, detail: json["detail"]?.stringValue ?? "",
                                   durationMs: json["durationMs"]?.intValue ?? 0)
    }

    func endpoints(of profile: Profile, autodiscover: (ok: Bool, attempts: [AutodiscoverAttempt])?) -> EndpointsResult {
        let settings = profile.connection(for: profile.calendarSystem ?? .exchange).settings
        return EndpointsResult(ewsUrl: settings[ExchangeSetting.ewsUrl]?.stringValue,
                               oabUrl: settings[ExchangeSetting.oabUrl]?.stringValue,
                               endpointSource: settings[ExchangeSetting.endpointSource]?.stringValue.flatMap(EndpointSource.init(rawValue:)),
                               autodiscover: autodiscover)
    }

    func overrideEndpoints(_ params: OverrideEndpoints.Params) async throws(RPCError) -> EndpointsResult {
        let updated = try await store.update(params.profileId) { [self] profile throws(RPCError) in
            let system = try requireCalendarSystem(profile, in: Self.endpointSystems, for: "setting EWS and OAB URLs")
            var c = profile.connection(for: system)
            c.settings[ExchangeSetting.ewsUrl] = .string(params.ewsUrl)
            c.settings[ExchangeSetting.oabUrl] = params.oabUrl.map(JSONValue.string) ?? .null
            c.settings[ExchangeSetting.endpointSource] = .string(EndpointSource.override.rawValue)
            c.lastTest = nil
            c.revision += 1
            profile.calendars[system] = c
        }
        return endpoints(of: updated, autodiscover: nil)
    }

    func trustCertificate(_ params: TrustCertificate.Params) async throws(RPCError) -> TrustCertificate.Result {
        try await store.update(params.profileId) { profile in
            let pin = TrustedCertificate(host: params.host, sha256: params.sha256)
            if !profile.trustedCertificates.contains(pin) { profile.trustedCertificates.append(pin) }
        }
        logger.info("Trusting the certificate \(params.sha256) for \(params.host) in profile \(params.profileId).")
        return TrustCertificate.Result()
    }

    /// The Exchange test: account from the profile, password from the keyring.
    func testExchange(_ profile: Profile, progress: @escaping ProgressReporter) async -> ([ConnectionCheck], RPCError?) {
        let c = profile.connection(for: .exchange)
        guard c.hasPassword, let userName = c.settings[ExchangeSetting.userName]?.stringValue,
              let email = c.settings[ExchangeSetting.email]?.stringValue else {
            return ([], RPCError(.notSignedIn, "Enter the Exchange user name, domain, e-mail address and password first.",
                                 hint: "Call submitExchangeCredentials."))
        }
        guard let ewsUrl = c.settings[ExchangeSetting.ewsUrl]?.stringValue else {
            return ([], RPCError(.endpointInvalid, "The profile has no EWS URL yet.",
                                 hint: "Run Autodiscover (submitExchangeCredentials) or enter it with overrideEndpoints.",
                                 details: ["field": "ewsUrl"]))
        }
        let password: String
        do {
            guard let stored = try await secrets.lookup(SecretKey(profile: profile.id, system: .exchange, kind: .password)) else {
                return ([], RPCError(.notSignedIn, "The Exchange password is missing from the keyring.",
                                     hint: "Enter the credentials again with submitExchangeCredentials."))
            }
            password = stored
        } catch {
            return ([], error)
        }
        redactor.register(password)
        let account = ExchangeAccount(userName: userName, domain: c.settings[ExchangeSetting.domain]?.stringValue, email: email,
                                      password: password, impersonateMailbox: c.settings[ExchangeSetting.impersonateMailbox]?.stringValue)
        let client: HTTPClient
        do throws(RPCError) { client = try network.http() } catch { return ([], error) }
        let test = EWSConnectionTest(client: client, pins: { host in profile.pins(for: host) })
        return await test.run(account: account, ewsUrl: ewsUrl, oabUrl: c.settings[ExchangeSetting.oabUrl]?.stringValue, progress: progress)
    }
}
