import ConnectorCore
import GoogleConnector
import HTTP
import Keyring
import Microsoft365Connector
import OAuth
import RPCCore
import SuperOfficeConnector
import WizardContract

/// startSignIn, awaitSignIn's keeping of the result, signOut, and access tokens for the checks.
/// Every OAuth system goes one way: its connector's provider feeds the one OAuth flow, and
/// `keep` files what came back. The registry of providers is `oauthProvider(_:_:)`.
extension WizardService {
    /// The OAuth provider of a system from its provider settings; SuperOffice's environment is
    /// the one the profile signed in to, once it has.
    func oauthProvider(_ system: System, _ settings: ProviderSettings, profile: Profile? = nil) throws(RPCError) -> any OAuthProvider {
        switch system {
        case .superOffice:
            let environment = profile.flatMap { SuperOfficeSettings($0.superOffice.settings).environment } ?? settings.environment ?? .online
            return SuperOffice(environment: environment, hosts: network.options.superOfficeHosts, clientId: settings.clientId)
        case .microsoft365:
            return Microsoft365(tenant: settings.tenant, clientId: settings.clientId)
        case .google:
            return Google(clientId: settings.clientId)
        case .exchange:
            throw RPCError(.invalidParams, "Microsoft Exchange does not sign in with OAuth.", details: ["field": "system"])
        }
    }

    func providerSettings(_ system: System) async throws(RPCError) -> (ProviderSettings, String?) {
        guard let settings = try await store.providerSettings().first(where: { $0.system == system }) else {
            throw RPCError(
                .providerNotConfigured, "\(system.displayName) has no client id yet.",
                hint: "Call setProviderSettings with the application's client id (and secret) first.")
        }
        let secret = settings.hasClientSecret ? try await secrets.lookup(SecretKey.clientSecret(for: system)) : nil
        if let secret { redactor.register(secret) }
        return (settings, secret)
    }

    func oauthFlow() throws(RPCError) -> OAuthFlow {
        let redactor = self.redactor
        return OAuthFlow(http: try network.http(), keySets: try network.keySets(), keepSecret: { redactor.register($0) }, now: Clock.now)
    }

    func startSignIn(_ params: StartSignIn.Params) async throws(RPCError) -> StartSignIn.Result {
        let profile = try await store.get(params.profileId)
        if params.system.isCalendar {
            _ = try requireCalendarSystem(profile, in: [params.system], for: "signing in with \(params.system.displayName)")
        }
        let (settings, clientSecret) = try await providerSettings(params.system)
        let provider = try oauthProvider(params.system, settings)
        let flow = try oauthFlow()
        if let microsoft = provider as? Microsoft365 {
            if params.flow == .deviceCode {
                return try await startDeviceCode(params, microsoft: microsoft, clientSecret: clientSecret, flow: flow)
            }
            let plan = try microsoftPlan(params, microsoft: microsoft, clientSecret: clientSecret, flow: flow)
            return try await signIns.start(plan, now: Clock.now(), isoDate: Clock.iso8601)
        }
        let environment = (provider as? SuperOffice)?.environment
        let plan = flow.plan(
            provider, profileId: params.profileId, clientSecret: clientSecret, loginHint: params.loginHint,
            timeoutSeconds: signInTimeoutSeconds, keeper: self
        ) { _ in
            (account: JSONObject(), settings: environment.map(SuperOfficeSettings.afterSignIn(environment:)) ?? JSONObject())
        }
        return try await signIns.start(plan, now: Clock.now(), isoDate: Clock.iso8601)
    }

    /// Microsoft's browser sign-in, or with `adminConsent` the tenant-wide consent leg first
    /// (protocols.md §7.3). Both keep the EWS URL Autodiscover v2 names for the account.
    func microsoftPlan(_ params: StartSignIn.Params, microsoft: Microsoft365, clientSecret: String?, flow: OAuthFlow) throws(RPCError) -> SignInPlan {
        let consentLeg = params.adminConsent ? try microsoft.adminConsentLeg() : nil
        var plan = flow.plan(
            microsoft, profileId: params.profileId, clientSecret: clientSecret, loginHint: params.loginHint,
            timeoutSeconds: signInTimeoutSeconds, keeper: self,
            parameters: consentLeg == nil ? nil : microsoft.authorizationParameters(loginHint: params.loginHint, prompt: "select_account")
        ) { signedIn in
            Self.microsoftExtras(signedIn, adminConsent: consentLeg != nil)
        }
        plan.consentLeg = consentLeg
        return plan
    }

    /// What a Microsoft sign-in files beside the tokens. The EWS URL is looked up after it is
    /// kept (`discoverMicrosoftEWS`): no verdict waits for it, so signInCompleted does not.
    static func microsoftExtras(_ signedIn: SignedIn, adminConsent: Bool) -> (account: JSONObject, settings: JSONObject) {
        let tenant: String?? = adminConsent ? .some(signedIn.account["tenantId"]?.stringValue) : nil
        return (
            account: adminConsent ? ["adminConsent": true] : [:],
            settings: Microsoft365Settings.afterSignIn(adminConsentTenant: tenant)
        )
    }

    /// Autodiscover v2 for the signed-in account's EWS URL, in the background, filed into the
    /// profile if it is still signed in as that account.
    func discoverMicrosoftEWS(profileId: String, userPrincipalName upn: String) {
        guard let http = try? network.http() else { return }
        let store = self.store
        Task {
            let ews = await Microsoft365.discoverEWS(email: upn, http: http)
            _ = try? await store.update(profileId) { profile in
                var c = profile.connection(for: .microsoft365)
                guard c.hasRefreshToken, c.account?["userPrincipalName"]?.stringValue == upn else { return }
                Microsoft365Settings.fileDiscoveredEws(ews, into: &c.settings)
                profile.setConnection(c, for: .microsoft365)
            }
        }
    }

    /// RFC 8628 for front ends without a browser: the user enters userCode at verificationUri.
    func startDeviceCode(_ params: StartSignIn.Params, microsoft: Microsoft365, clientSecret: String?, flow: OAuthFlow) async throws(RPCError)
        -> StartSignIn.Result
    {
        let device = try await flow.deviceAuthorization(microsoft.deviceCodeEndpoint, provider: microsoft, scope: Microsoft365.delegatedScope)
        let profileId = params.profileId
        return await signIns.startDeviceCode(
            profileId: profileId, system: .microsoft365, userCode: device.userCode, verificationUri: device.verificationUri,
            expiresIn: device.expiresIn, message: device.message, isoDate: Clock.iso8601, now: Clock.now()
        ) { [self] () throws(RPCError) -> JSONObject in
            let signedIn = try await flow.pollDeviceCode(device, provider: microsoft, clientSecret: clientSecret)
            let extras = Self.microsoftExtras(signedIn, adminConsent: false)
            try await keep(signedIn, profileId: profileId, system: .microsoft365, settings: extras.settings)
            return signedIn.account
        }
    }

    func signOut(_ params: SignOut.Params) async throws(RPCError) -> SignOut.Result {
        _ = try await store.get(params.profileId)
        let system = params.system
        try await secrets.delete(SecretKey(profile: params.profileId, system: system, kind: system.usesOAuth ? .refreshToken : .password))
        await accessTokens.forget(.init(profile: params.profileId, system: system))
        try await store.update(params.profileId) { profile in
            guard system == .superOffice || profile.calendars[system] != nil else { return }
            var c = profile.connection(for: system)
            if system == .superOffice {
                c = SystemConnection(revision: c.revision + 1)
            } else {
                if system.usesOAuth {
                    c.hasRefreshToken = false
                    c.account = nil
                } else {
                    c.hasPassword = false
                }
                c.lastTest = nil
                c.revision += 1
            }
            profile.setConnection(c, for: system)
        }
        return SignOut.Result()
    }

    /// Access tokens of a signed-in system for its checks: cached, or refreshed with the refresh
    /// token from the keyring (a rotated one is stored before the new access token is used).
    func tokenSource(profileId: String, provider: any OAuthProvider, clientSecret: String?, flow: OAuthFlow) -> AccessTokenSource {
        let key = AccessTokens.Key(profile: profileId, system: provider.system)
        let secretKey = SecretKey(profile: profileId, system: provider.system, kind: .refreshToken)
        let (secrets, accessTokens) = (self.secrets, self.accessTokens)
        let refresh: @Sendable (String?) async throws(RPCError) -> TokenResponse = { scope throws(RPCError) -> TokenResponse in
            guard let refreshToken = try await secrets.lookup(secretKey) else {
                throw RPCError(
                    .reauthenticationRequired, "The \(provider.system.displayName) refresh token is missing from the keyring.",
                    hint: "Sign in with \(provider.system.displayName) again.")
            }
            let tokens = try await flow.refresh(refreshToken, provider: provider, clientSecret: clientSecret, scope: scope)
            if let rotated = tokens.refreshToken, rotated != refreshToken {
                try await secrets.store(rotated, for: secretKey)
            }
            return tokens
        }
        return AccessTokenSource(
            fetch: { scope, cached throws(RPCError) in
                guard cached else { return try await refresh(scope).accessToken }
                return try await accessTokens.token(key, now: Clock.now()) { () throws(RPCError) -> TokenResponse in try await refresh(scope) }
            }, forget: { await accessTokens.forget(key) },
            refreshNow: { () throws(RPCError) -> TokenResponse in
                let tokens = try await refresh(nil)
                await accessTokens.remember(key, tokens, now: Clock.now())
                return tokens
            })
    }
}

/// The one way a finished sign-in is kept, for every OAuth system: the refresh token in the
/// keyring, the access token in memory, the account and settings in the profile with a new
/// revision (so an older test no longer counts).
extension WizardService: SignInKeeper {
    public func keep(_ signedIn: SignedIn, profileId: String, system: System, settings: JSONObject) async throws(RPCError) {
        guard let refreshToken = signedIn.tokens.refreshToken else {
            throw RPCError(
                .invalidToken, "\(system.displayName) answered without a refresh token.",
                hint: "Check that the application may use the authorization code flow with offline access.")
        }
        try await secrets.store(refreshToken, for: SecretKey(profile: profileId, system: system, kind: .refreshToken))
        await accessTokens.remember(.init(profile: profileId, system: system), signedIn.tokens, now: Clock.now())
        try await store.update(profileId) { profile in
            var c = profile.connection(for: system)
            c.hasRefreshToken = true
            c.account = signedIn.account
            for member in settings.members { c.settings[member.key] = member.value }
            c.lastTest = nil
            c.revision += 1
            profile.setConnection(c, for: system)
        }
        logger.info("Profile \(profileId) signed in to \(system.displayName).")
        if system == .microsoft365, let upn = signedIn.account["userPrincipalName"]?.stringValue {
            discoverMicrosoftEWS(profileId: profileId, userPrincipalName: upn)
        }
    }
}
