import ConnectorCore
import ExchangeConnector
import JSONRPC
import Keyring
import RPCCore
import WizardContract

/// submitExchangeCredentials, overrideEndpoints and trustCertificate. The profile keeps user
/// name, domain, e-mail and endpoints (ExchangeSettings); the password lives in the keyring.
extension WizardService {
    /// The systems whose EWS and OAB URLs can be set by hand.
    static let endpointSystems: Set<System> = [.exchange, .microsoft365]

    func requireCalendarSystem(_ profile: Profile, in systems: Set<System>, for what: String) throws(RPCError) -> System {
        guard let system = profile.calendarSystem, systems.contains(system) else {
            let names = systems.map(\.rawValue).sorted().joined(separator: " or ")
            let current = profile.calendarSystem.map { " (it is \($0.rawValue) now)" } ?? ""
            throw RPCError(
                .systemNotSelected, "Select \(names) as the profile's calendar system before \(what)\(current).",
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
            var settings = ExchangeSettings(c.settings)
            settings.userName = params.userName
            settings.domain = params.domain
            settings.email = params.email
            settings.impersonateMailbox = params.impersonateMailbox
            settings.applyAccount(to: &c.settings)
            c.hasPassword = true
            c.lastTest = nil
            c.revision += 1
            profile.calendars[.exchange] = c
        }
        logger.info("Saved Exchange credentials of profile \(params.profileId).")
        guard params.autodiscover else {
            return endpoints(of: updated, autodiscover: (ok: false, attempts: []))
        }

        let account = ExchangeAccount(
            userName: params.userName, domain: params.domain, email: params.email,
            password: params.password, impersonateMailbox: params.impersonateMailbox)
        let autodiscover = Autodiscover(
            client: try network.http(), resolver: network.resolver,
            budgetSeconds: network.options.autodiscoverBudgetSeconds,
            pins: { [profile = updated] host in profile.pins(for: host) })
        let knownEndpoint = try await knownAutodiscoverEndpoint(for: params.email, besides: params.profileId)
        let found: Autodiscover.Outcome
        do throws(AutodiscoverFailure) {
            found = try await autodiscover.run(
                account: account, allowRedirectHosts: params.allowRedirectHosts, knownEndpoint: knownEndpoint
            ) { stage, message, percent in
                context.progress(stage: stage, message: message, percent: percent)
            }
        } catch {
            if error.error.kind == .cancelled { throw error.error }
            // With endpoints already in force (an override), a failed Autodiscover is a report,
            // not a failure of the call.
            if ExchangeSettings(updated.connection(for: .exchange).settings).endpoints.ewsUrl != nil {
                return endpoints(of: updated, autodiscover: (ok: false, attempts: error.attempts))
            }
            let refusedAt = error.attempts.first { $0.outcome == "unauthorized" }?.url
            throw await addingAccountHints(to: error.error, url: refusedAt, account: account, profile: updated)
        }
        updated = try await store.update(params.profileId) { profile in
            var c = profile.connection(for: .exchange)
            var endpoints = EndpointSettings(c.settings)
            endpoints.discoveredEwsUrl = found.ewsUrl
            endpoints.discoveredOabUrl = found.oabUrl
            endpoints.discoveredAutodiscoverUrl = found.autodiscoverUrl
            endpoints.applyDiscovered(to: &c.settings)
            // A URL the user typed in stays in force until they change it.
            if endpoints.source != .override {
                endpoints.ewsUrl = found.ewsUrl
                endpoints.oabUrl = found.oabUrl
                endpoints.source = .autodiscover
                endpoints.applyInForce(to: &c.settings)
                c.lastTest = nil
                c.revision += 1
            }
            profile.calendars[.exchange] = c
        }
        return endpoints(of: updated, autodiscover: (ok: true, attempts: found.attempts))
    }

    /// The Autodiscover URL that answered for another Exchange profile of the same e-mail domain:
    /// learned once per organization.
    func knownAutodiscoverEndpoint(for email: String, besides profileId: String) async throws(RPCError) -> String? {
        guard let domain = EmailAddress.domain(of: email)?.lowercased() else { return nil }
        return try await store.list().lazy.filter { $0.id != profileId && $0.calendarSystem == .exchange }
            .map { ExchangeSettings($0.connection(for: .exchange).settings) }
            .first { $0.email.flatMap(EmailAddress.domain(of:))?.lowercased() == domain && $0.endpoints.discoveredAutodiscoverUrl != nil }?
            .endpoints.discoveredAutodiscoverUrl
    }

    func endpoints(of profile: Profile, autodiscover: (ok: Bool, attempts: [AutodiscoverAttempt])?) -> EndpointsResult {
        let endpoints = EndpointSettings(profile.connection(for: profile.calendarSystem ?? .exchange).settings)
        return EndpointsResult(ewsUrl: endpoints.ewsUrl, oabUrl: endpoints.oabUrl, endpointSource: endpoints.source, autodiscover: autodiscover)
    }

    func overrideEndpoints(_ params: OverrideEndpoints.Params) async throws(RPCError) -> EndpointsResult {
        let updated = try await store.update(params.profileId) { [self] profile throws(RPCError) in
            let system = try requireCalendarSystem(profile, in: Self.endpointSystems, for: "setting EWS and OAB URLs")
            var c = profile.connection(for: system)
            var endpoints = EndpointSettings(c.settings)
            endpoints.ewsUrl = params.ewsUrl
            endpoints.oabUrl = params.oabUrl
            endpoints.source = .override
            endpoints.applyInForce(to: &c.settings)
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
}
