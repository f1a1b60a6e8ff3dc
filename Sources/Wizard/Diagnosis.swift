import ConnectorCore
import ExchangeConnector
import GoogleConnector
import HTTP
import JSONRPC
import Keyring
import Microsoft365Connector
import OAuth
import RPCCore
import SuperOfficeConnector
import WizardContract

/// diagnose: every step of the path to the profile's systems, in order (SuperOffice, then the
/// calendar system), each run by its connector. The wizard only gathers what the profile and
/// keyring hold, scrubs the result of every secret it knows, and writes the report.
extension WizardService {
    public func diagnose(_ params: Diagnose.Params, observer: @escaping DiagnosisObserver) async throws(RPCError) -> Diagnose.Result {
        let profile = try await store.get(params.profileId)
        var steps: [DiagnosisStep] = []
        if params.target != .calendar { steps += await diagnose(.superOffice, profile, observer: observer) }
        if params.target != .superOffice {
            if let system = profile.calendarSystem {
                steps += await diagnose(system, profile, observer: observer)
            } else {
                var run = DiagnosisRun(system: "calendar", observer: observer)
                await run.step("calendar.system", "The calendar system") { _ throws(RPCError) in
                    throw RPCError(
                        .systemNotSelected, "No calendar system is selected yet.", hint: "Choose Microsoft 365, Exchange or Google (selectCalendarSystem).")
                }
                steps += run.steps
            }
        }
        if Task.isCancelled { throw RPCError.cancelled }
        let result = Diagnose.Result(generatedAt: Clock.nowISO8601(), steps: steps.map(scrubbed), reportPath: params.reportPath)
        if let path = params.reportPath {
            let report = DiagnosisReport(result: result, profileName: profile.name, profileId: profile.id, version: info.version).markdown
            try FileOps.writeAtomically(path, Array(redactor.redact(report).utf8))
        }
        return result
    }

    /// The JSON-RPC method: a `progress` notification as each step starts (stage = its id).
    func diagnose(_ params: Diagnose.Params, context: RequestContext) async throws(RPCError) -> Diagnose.Result {
        try await diagnose(params) { event in
            if case .started(let id, let title) = event { context.progress(stage: id, message: title, percent: nil) }
        }
    }

    func diagnose(_ system: System, _ profile: Profile, observer: @escaping DiagnosisObserver) async -> [DiagnosisStep] {
        var run = DiagnosisRun(system: system.rawValue, observer: observer)
        if system == .exchange {
            await diagnoseExchange(profile, into: &run)
            return run.steps
        }
        var provider: (any OAuthProvider)?
        var clientSecret: String?
        await run.step("\(system.rawValue).provider", "\(system.displayName) provider settings") { evidence throws(RPCError) in
            let (settings, secret) = try await providerSettings(system)
            clientSecret = secret
            provider = try oauthProvider(system, settings, profile: profile)
            evidence["clientId"] = .string(settings.clientId)
            evidence["tenant"] = settings.tenant.map(JSONValue.string)
            evidence["environment"] = settings.environment.map { .string($0.rawValue) }
            evidence["hasClientSecret"] = .bool(settings.hasClientSecret)
            return .pass("Client id \(settings.clientId) is set.")
        }
        guard let provider else { return run.steps }
        let connection = profile.connection(for: system)
        var tokens: AccessTokenSource?
        var http: any HTTPTransport
        do throws(RPCError) {
            let flow = try oauthFlow()
            http = flow.http
            if connection.hasRefreshToken { tokens = tokenSource(profileId: profile.id, provider: provider, clientSecret: clientSecret, flow: flow) }
        } catch {
            await run.step("\(system.rawValue).network", "The HTTP client") { _ throws(RPCError) in throw error }
            return run.steps
        }
        switch provider {
        case let superOffice as SuperOffice:
            let context = connection.account?["contextIdentifier"]?.stringValue
            await superOffice.diagnose(context: context, tokens: context == nil ? nil : tokens, http: http, into: &run)
        case let microsoft as Microsoft365:
            await microsoft.diagnose(
                tokens: tokens, ewsUrl: Microsoft365Settings(connection.settings).endpoints.ewsUrl,
                mailbox: connection.account?["userPrincipalName"]?.stringValue, http: http, into: &run)
        case let google as Google:
            await google.diagnose(tokens: tokens, http: http, into: &run)
        default:
            break
        }
        return run.steps
    }

    func diagnoseExchange(_ profile: Profile, into run: inout DiagnosisRun) async {
        let c = profile.connection(for: .exchange)
        let settings = ExchangeSettings(c.settings)
        var password: String?
        if c.hasPassword {
            do throws(RPCError) {
                password = try await secrets.lookup(SecretKey(profile: profile.id, system: .exchange, kind: .password))
            } catch {
                await run.step("exchange.keyring", "The Exchange password in the keyring") { _ throws(RPCError) in throw error }
            }
        }
        if let password { redactor.register(password) }
        let client: any HTTPTransport
        let prober: (any ConnectionProbing)?
        do throws(RPCError) {
            client = try network.http()
            prober = try network.prober()
        } catch {
            await run.step("exchange.network", "The HTTP client") { _ throws(RPCError) in throw error }
            return
        }
        let diagnosis = ExchangeDiagnosis(
            client: client, prober: prober, resolver: network.resolver, stepTimeoutSeconds: network.options.diagnosisStepTimeoutSeconds,
            autodiscoverBudgetSeconds: network.options.autodiscoverBudgetSeconds, redirectedHosts: network.redirectedHosts,
            pins: { host in profile.pins(for: host) }, now: Clock.now)
        await diagnosis.run(
            ExchangeDiagnosis.Profile(
                userName: settings.userName, domain: settings.domain, email: settings.email, password: password,
                impersonateMailbox: settings.impersonateMailbox, endpoints: settings.endpoints),
            into: &run)
    }

    /// Defence in depth: no step leaves with a secret this process knows (password, tokens,
    /// client secrets), even if a server echoed one into a message.
    func scrubbed(_ step: DiagnosisStep) -> DiagnosisStep {
        var step = step
        step.message = redactor.redact(step.message)
        step.remediation = step.remediation.map(redactor.redact)
        if case .object(let evidence) = redactor.redact(.object(step.evidence)) { step.evidence = evidence }
        return step
    }
}
