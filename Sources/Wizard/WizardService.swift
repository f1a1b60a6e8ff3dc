import JSONRPC
import Keyring
import Logging
import OAuth
import RPCCore
import WizardContract

/// The method handlers of the "Configure Systems" step: profiles, provider settings and
/// wizard state. Connectors (SuperOffice, Exchange, Microsoft 365, Google) plug in beside it.
public final class WizardService: Sendable {
    public struct ServerInfo: Sendable {
        public var name: String
        public var version: String
        public var maximumMessageBytes: Int
        public init(name: String, version: String, maximumMessageBytes: Int) {
            self.name = name
            self.version = version
            self.maximumMessageBytes = maximumMessageBytes
        }
    }

    let store: ProfileStore
    let secrets: any SecretStore
    let info: ServerInfo
    let logger: Logger
    let redactor: Redactor
    let network: Network
    let signIns: SignInManager
    let accessTokens = AccessTokens()
    let signInTimeoutSeconds: Double

    /// `notify` sends server → client notifications (signInCompleted, signInFailed).
    public init(
        store: ProfileStore, secrets: any SecretStore, info: ServerInfo, logger: Logger,
        network: Network = Network(options: .init()), redactor: Redactor = .shared,
        signInTimeoutSeconds: Double = 600,
        notify: @escaping SignInManager.Notifier = { _, _ in }
    ) {
        self.signIns = SignInManager(notify: notify)
        self.signInTimeoutSeconds = signInTimeoutSeconds
        self.store = store
        self.secrets = secrets
        self.network = network
        self.info = info
        self.logger = logger
        self.redactor = redactor
    }

    public func register(into table: inout MethodTable) {
        let info = self.info
        table.registerRaw(
            Initialize.name,
            .inline { (params) throws(RPCError) -> JSONValue in
                _ = try Initialize.Params.decodeLeniently(params)
                return Initialize.Result(serverName: info.name, serverVersion: info.version, capabilities: Self.capabilities(info)).json
            })
        table.registerInline(Ping.self) { _ in Ping.Result() }
        table.registerInline(Discover.self) { _ in OpenRPCDocument.value }

        table.register(CreateProfile.self) { params, _ in try await self.store.create(name: params.name) }
        table.register(ListProfiles.self) { _, _ in ListProfiles.Result(profiles: try await self.store.list()) }
        table.register(GetProfile.self) { params, _ in try await self.store.get(params.profileId) }
        table.register(DeleteProfile.self) { params, _ in try await self.deleteProfile(params.profileId) }
        table.register(SelectCalendarSystem.self) { params, _ in
            try await self.store.update(params.profileId) { profile in profile.calendarSystem = params.system }
        }
        table.register(GetWizardState.self) { params, _ in try await self.wizardState(params.profileId) }
        table.register(NextStep.self) { params, _ in
            let state = try await self.wizardState(params.profileId)
            guard state.canContinue else {
                let list = state.blockers.map(\.message).joined(separator: " ")
                throw RPCError(
                    .stepIncomplete, "The systems are not all connected and tested yet: \(list)",
                    details: JSONObject([("blockers", state.blockers.json)]))
            }
            return NextStep.Result(step: WizardState.followingStep)
        }
        table.register(SetProviderSettings.self) { params, _ in try await self.setProviderSettings(params) }
        table.register(SubmitExchangeCredentials.self) { params, context in try await self.submitExchangeCredentials(params, context: context) }
        table.register(DiscoverAccountHints.self) { params, context in try await self.discoverAccountHints(params, context: context) }
        table.register(OverrideEndpoints.self) { params, _ in try await self.overrideEndpoints(params) }
        table.register(TrustCertificate.self) { params, _ in try await self.trustCertificate(params) }
        table.register(TestConnection.self) { params, context in try await self.testConnection(params, context: context) }
        table.register(StartSignIn.self) { params, _ in try await self.startSignIn(params) }
        table.register(AwaitSignIn.self) { params, _ in try await self.signIns.wait(params.signInId, timeoutSeconds: params.timeoutSeconds) }
        table.register(CompleteSignIn.self) { params, _ in
            self.redactor.register(params.redirectUrl)
            return try await self.signIns.complete(params.signInId, redirectUrl: params.redirectUrl)
        }
        table.register(CancelSignIn.self) { params, _ in try await self.signIns.cancel(params.signInId) }
        table.register(SignOut.self) { params, _ in try await self.signOut(params) }
        table.register(GetProviderSettings.self) { params, _ in
            let all = try await self.store.providerSettings()
            return GetProviderSettings.Result(providers: all.filter { params.system == nil || $0.system == params.system })
        }
    }

    static func capabilities(_ info: ServerInfo) -> JSONObject {
        JSONObject([
            ("framings", ["ndjson", "contentLength"]),
            ("batches", true),
            ("cancellation", true),
            ("progress", true),
            ("maximumMessageBytes", .int(info.maximumMessageBytes)),
            ("calendarSystems", .array(System.calendars.map { .string($0.rawValue) })),
        ])
    }

    func wizardState(_ id: String) async throws(RPCError) -> WizardState {
        let profile = try await store.get(id)
        let providers = try await store.providerSettings()
        return WizardStateEvaluator.evaluate(profile, providers: providers)
    }

    /// Secrets go first: if the keyring cannot delete them, the profile stays, so nothing is
    /// orphaned in the keyring and the user can retry.
    /// Closes every sign-in listener (input ended).
    public func close() async {
        await signIns.closeAll()
    }

    func deleteProfile(_ id: String) async throws(RPCError) -> DeleteProfile.Result {
        _ = try await store.get(id)
        try await secrets.deleteAll(profile: id)
        await accessTokens.forgetProfile(id)
        try await store.delete(id)
        logger.info("Deleted profile \(id) and its secrets.")
        return DeleteProfile.Result()
    }

    func setProviderSettings(_ params: SetProviderSettings.Params) async throws(RPCError) -> ProviderSettings {
        let key = SecretKey.clientSecret(for: params.system)
        var hasSecret: Bool?
        switch params.clientSecret {
        case let secret? where !secret.isEmpty:
            redactor.register(secret)
            try await secrets.store(secret, for: key)
            hasSecret = true
        case ""?:
            try await secrets.delete(key)
            hasSecret = false
        default:
            hasSecret = nil
        }
        let secretState = hasSecret
        let updated = try await store.updateProviderSettings { all in
            let previous = all.first { $0.system == params.system }
            var settings = ProviderSettings(system: params.system, clientId: params.clientId)
            settings.hasClientSecret = secretState ?? previous?.hasClientSecret ?? false
            settings.environment = params.system == .superOffice ? (params.environment ?? previous?.environment ?? .online) : nil
            settings.tenant = params.system == .microsoft365 ? (params.tenant ?? previous?.tenant ?? "organizations") : nil
            all.removeAll { $0.system == params.system }
            all.append(settings)
        }
        return updated.first { $0.system == params.system }!
    }
}
