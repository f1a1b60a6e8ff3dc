import ConnectorCore
import ExchangeConnector
import GoogleConnector
import JSONRPC
import Keyring
import Microsoft365Connector
import OAuth
import RPCCore
import SuperOfficeConnector
import WizardContract

/// testConnection: both sides at once, each run by its connector and reported with its
/// checks; the outcome is kept in the profile so getWizardState and nextStep can judge it.
extension WizardService {
    func testConnection(_ params: TestConnection.Params, context: RequestContext) async throws(RPCError) -> TestConnection.Result {
        let profile = try await store.get(params.profileId)
        let progress: ProgressReporter = { stage, message, percent in context.progress(stage: stage, message: message, percent: percent) }
        async let superOffice: SystemTestResult? = params.target != .calendar ? self.test(.superOffice, profile, progress: progress) : nil
        async let calendar: SystemTestResult? = params.target != .superOffice ? self.testCalendar(profile, progress: progress) : nil
        let results = [await superOffice, await calendar].compactMap { $0 }
        if Task.isCancelled { throw RPCError.cancelled }
        try await record(results, for: profile)
        return TestConnection.Result(results: results)
    }

    func testCalendar(_ profile: Profile, progress: @escaping ProgressReporter) async -> SystemTestResult {
        guard let system = profile.calendarSystem else {
            return SystemTestResult(
                side: .calendar, system: nil, checks: [],
                error: RPCError(.systemNotSelected, "No calendar system is selected yet.", hint: "Call selectCalendarSystem first."))
        }
        return await test(system, profile, progress: progress)
    }

    func test(_ system: System, _ profile: Profile, progress: @escaping ProgressReporter) async -> SystemTestResult {
        let (checks, error) = await checks(system, profile, progress: progress)
        return SystemTestResult(side: system.side, system: system.isCalendar ? system.rawValue : nil, checks: checks, error: error)
    }

    /// The connector's checks for one system, with what the profile and keyring hold.
    func checks(_ system: System, _ profile: Profile, progress: @escaping ProgressReporter) async -> ([ConnectionCheck], RPCError?) {
        if system == .exchange { return await testExchange(profile, progress: progress) }
        let connection = profile.connection(for: system)
        guard connection.hasRefreshToken else {
            return ([], RPCError(.notSignedIn, "\(system.displayName) is not signed in yet.", hint: "Sign in with \(system.displayName) first."))
        }
        do throws(RPCError) {
            let (settings, clientSecret) = try await providerSettings(system)
            let provider = try oauthProvider(system, settings, profile: profile)
            let flow = try oauthFlow()
            let tokens = tokenSource(profileId: profile.id, provider: provider, clientSecret: clientSecret, flow: flow)
            switch provider {
            case let superOffice as SuperOffice:
                guard let context = connection.account?["contextIdentifier"]?.stringValue else {
                    return ([], RPCError(.notSignedIn, "SuperOffice is not signed in yet.", hint: "Sign in with SuperOffice first."))
                }
                return await superOffice.test(context: context, tokens: tokens, http: flow.http, progress: progress)
            case let microsoft as Microsoft365:
                let endpoints = Microsoft365Settings(connection.settings).endpoints
                return await microsoft.test(
                    tokens: tokens, ewsUrl: endpoints.ewsUrl, mailbox: connection.account?["userPrincipalName"]?.stringValue,
                    http: flow.http, progress: progress)
            case let google as Google:
                return await google.test(tokens: tokens, http: flow.http, progress: progress)
            default:
                return ([], RPCError(.internalError, "No connection test for \(system.displayName)."))
            }
        } catch {
            return ([], error)
        }
    }

    /// The Exchange test: account from the profile, password from the keyring.
    func testExchange(_ profile: Profile, progress: @escaping ProgressReporter) async -> ([ConnectionCheck], RPCError?) {
        let c = profile.connection(for: .exchange)
        let settings = ExchangeSettings(c.settings)
        guard c.hasPassword, let userName = settings.userName, let email = settings.email else {
            return (
                [],
                RPCError(
                    .notSignedIn, "Enter the Exchange user name, domain, e-mail address and password first.",
                    hint: "Call submitExchangeCredentials.")
            )
        }
        guard let ewsUrl = settings.endpoints.ewsUrl else {
            return (
                [],
                RPCError(
                    .endpointInvalid, "The profile has no EWS URL yet.",
                    hint: "Run Autodiscover (submitExchangeCredentials) or enter it with overrideEndpoints.",
                    details: ["field": "ewsUrl"])
            )
        }
        do throws(RPCError) {
            guard let password = try await secrets.lookup(SecretKey(profile: profile.id, system: .exchange, kind: .password)) else {
                return (
                    [],
                    RPCError(
                        .notSignedIn, "The Exchange password is missing from the keyring.",
                        hint: "Enter the credentials again with submitExchangeCredentials.")
                )
            }
            redactor.register(password)
            let account = ExchangeAccount(
                userName: userName, domain: settings.domain, email: email,
                password: password, impersonateMailbox: settings.impersonateMailbox)
            let test = EWSConnectionTest(client: try network.http(), pins: { host in profile.pins(for: host) })
            let (checks, error) = await test.run(account: account, ewsUrl: ewsUrl, oabUrl: settings.endpoints.oabUrl, progress: progress)
            guard let error else { return (checks, nil) }
            return (checks, await addingAccountHints(to: error, url: ewsUrl, account: account, profile: profile))
        } catch {
            return ([], error)
        }
    }

    /// Keeps each outcome, unless the credentials changed while the test ran (their revision
    /// moved on): a test of old settings must not count for new ones.
    func record(_ results: [SystemTestResult], for tested: Profile) async throws(RPCError) {
        let at = Clock.nowISO8601()
        try await store.update(tested.id) { profile in
            for result in results {
                let outcome = TestOutcome(ok: result.ok, at: at, message: result.error?.message)
                switch result.side {
                case .superOffice:
                    guard profile.superOffice.revision == tested.superOffice.revision else { continue }
                    if profile.superOffice.hasRefreshToken { profile.superOffice.lastTest = outcome }
                case .calendar:
                    guard let system = tested.calendarSystem, profile.calendarSystem == system,
                        profile.connection(for: system).revision == tested.connection(for: system).revision,
                        profile.calendars[system] != nil
                    else { continue }
                    profile.calendars[system]?.lastTest = outcome
                }
            }
        }
    }
}
