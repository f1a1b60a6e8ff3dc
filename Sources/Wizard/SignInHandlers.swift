import ConnectorCore
import HTTP
import JSONRPC
import Keyring
import OAuth
import SuperOfficeConnector
import Threading
import WizardProtocol

/// startSignIn, awaitSignIn, completeSignIn, cancelSignIn, signOut, and the SuperOffice test.
extension WizardService {
    func providerSettings(_ system: ProviderSystem) async throws(RPCError) -> (ProviderSettings, String?) {
        guard let settings = try await store.providerSettings().first(where: { $0.system == system }) else {
            throw RPCError(.providerNotConfigured, "\(SignInPage.displayName(system)) has no client id yet.",
                           hint: "Call setProviderSettings with the application's client id (and secret) first.")
        }
        let secret = settings.hasClientSecret ? try await secrets.lookup(SecretKey.clientSecret(for: system)) : nil
        if let secret { redactor.register(secret) }
        return (settings, secret)
    }

    func startSignIn(_ params: StartSignIn.Params) async throws(RPCError) -> JSONValue {
        _ = try await store.get(params.profileId)
        switch params.system {
        case .superOffice:
            let plan = try await superOfficePlan(params)
            return try await signIns.start(plan, now: Clock.now(), isoDate: Clock.iso8601).json
        case .microsoft365, .google:
            return try await startCalendarSignIn(params)
        }
    }

    func superOfficePlan(_ params: StartSignIn.Params) async throws(RPCError) -> SignInPlan {
        let (settings, clientSecret) = try await providerSettings(.superOffice)
        let environment = settings.environment ?? .online
        let superOffice = SuperOffice(environment: environment, hosts: network.options.superOfficeHosts)
        let http = try network.http()
        let profileId = params.profileId
        let clientId = settings.clientId
        return SignInPlan(
            profileId: profileId, system: .superOffice, authorizeEndpoint: superOffice.authorizeEndpoint,
            parameters: superOffice.authorizationParameters(clientId: clientId, loginHint: params.loginHint),
            timeoutSeconds: signInTimeoutSeconds,
            finish: { [self] answer throws(RPCError) -> JSONObject in
                redactor.register(answer.code)
                var form = [("grant_type", "authorization_code"), ("code", answer.code), ("redirect_uri", answer.redirectURI), ("client_id", clientId)]
                if let verifier = answer.codeVerifier { form.append(("code_verifier", verifier)) }
                if let clientSecret { form.append(("client_secret", clientSecret)) }
                let tokens = try await exchange(superOffice.tokenEndpoint, form: form, http: http)
                guard let idToken = tokens.idToken else {
                    throw RPCError(.invalidToken, "SuperOffice answered without an id_token.")
                }
                let keys = try await network.keySets().keys(superOffice.jwksEndpoint, forToken: idToken)
                let claims = try IDTokenValidator.validate(idToken, keys: keys,
                                                           expect: IDTokenExpectations(issuer: superOffice.issuer, audience: clientId, nonce: answer.nonce),
                                                           now: Clock.now())
                let account = try SuperOffice.account(from: claims, environment: environment)
                guard let refreshToken = tokens.refreshToken else {
                    throw RPCError(.invalidToken, "SuperOffice answered without a refresh token.", hint: "Check that the application may use the authorization code flow.")
                }
                try await secrets.store(refreshToken, for: SecretKey(profile: profileId, system: .superOffice, kind: .refreshToken))
                await accessTokens.remember(.init(profile: profileId, system: .superOffice), tokens, now: Clock.now())
                try await store.update(profileId) { profile in
                    profile.superOffice.hasRefreshToken = true
                    profile.superOffice.account = account
                    profile.superOffice.settings["environment"] = .string(environment.rawValue)
                    profile.superOffice.lastTest = nil
                    profile.superOffice.revision += 1
                }
                logger.info("Profile \(profileId) signed in to SuperOffice tenant \(account["contextIdentifier"]?.stringValue ?? "?").")
                return account
            })
    }

    /// A token request whose secrets (tokens) are registered for redaction before anything else.
    func exchange(_ url: String, form: [(String, String)], http: HTTPClient,
                  mapError: @Sendable (OAuthErrorResponse) -> RPCError = OAuthErrors.standard) async throws(RPCError) -> TokenResponse {
        do {
            let tokens = try await TokenClient(http: http).request(url, form: form)
            for secret in [tokens.accessToken, tokens.refreshToken, tokens.idToken].compactMap({ $0 }) { redactor.register(secret) }
            return tokens
        } catch {
            switch error {
            case .oauth(let response, _): throw mapError(response)
            case .transport(let rpc): throw rpc
            }
        }
    }

    func signOut(_ params: SignOut.Params) async throws(RPCError) -> SignOut.Result {
        _ = try await store.get(params.profileId)
        switch params.system {
        case .superOffice:
            try await secrets.delete(SecretKey(profile: params.profileId, system: .superOffice, kind: .refreshToken))
            await accessTokens.forget(.init(profile: params.profileId, system: .superOffice))
            try await store.update(params.profileId) { profile in
                profile.superOffice = SystemConnection(revision: profile.superOffice.revision + 1)
            }
        case .exchange:
            try await secrets.delete(SecretKey(profile: params.profileId, system: .exchange, kind: .password))
            try await store.update(params.profileId) { profile in
                guard var c = profile.calendars[.exchange] else { return }
                c.hasPassword = false
                c.lastTest = nil
                c.revision += 1
                profile.calendars[.exchange] = c
            }
        case .microsoft365, .google:
            let system: CalendarSystem = params.system == .google ? .google : .microsoft365
            let keyringSystem: KeyringSystem = params.system == .google ? .google : .microsoft365
            try await secrets.delete(SecretKey(profile: params.profileId, system: keyringSystem, kind: .refreshToken))
            await accessTokens.forget(.init(profile: params.profileId, system: system == .google ? .google : .microsoft365))
            try await store.update(params.profileId) { profile in
                guard var c = profile.calendars[system] else { return }
                c.hasRefreshToken = false
                c.account = nil
                c.lastTest = nil
                c.revision += 1
                profile.calendars[system] = c
            }
        }
        return SignOut.Result()
    }

    /// State API, then currentPrincipal with a (refreshed when needed) access token.
    func testSuperOffice(_ profile: Profile, progress: @escaping ProgressReporter) async -> SystemTestResult {
        let connection = profile.superOffice
        guard connection.hasRefreshToken, let context = connection.account?["contextIdentifier"]?.stringValue else {
            return SystemTestResult(side: .superOffice, system: nil, checks: [],
                                    error: RPCError(.notSignedIn, "SuperOffice is not signed in yet.", hint: "Sign in with SuperOffice first."))
        }
        var checks: [ConnectionCheck] = []
        do throws(RPCError) {
            let environment = connection.settings["environment"]?.stringValue.flatMap(SuperOfficeEnvironment.init(rawValue:)) ?? .online
            let superOffice = SuperOffice(environment: environment, hosts: network.options.superOfficeHosts)
            let http = try network.http()
            progress("testConnection", "Asking SuperOffice whether tenant \(context) is running.", 10)
            var watch = Stopwatch()
            let apiBase: String
            do {
                let (api, state) = try await superOffice.tenantState(context: context, http: http)
                apiBase = api
                checks.append(ConnectionCheck(name: "tenantState", ok: true, durationMs: watch.elapsedMs, message: "Tenant \(context) is \(state)."))
            } catch {
                checks.append(ConnectionCheck(name: "tenantState", ok: false, durationMs: watch.elapsedMs, message: error.message))
                throw error
            }
            progress("testConnection", "Calling the SuperOffice API as the signed-in user.", 50)
            watch = Stopwatch()
            do {
                var token = try await superOfficeAccessToken(profileId: profile.id, superOffice: superOffice, http: http)
                let message: String
                do {
                    message = try await SuperOffice.currentPrincipal(apiBase: apiBase, accessToken: token, http: http)
                } catch where error.kind == .reauthenticationRequired {
                    // The cached token may have been revoked or expired early: refresh once and retry.
                    await accessTokens.forget(.init(profile: profile.id, system: .superOffice))
                    token = try await superOfficeAccessToken(profileId: profile.id, superOffice: superOffice, http: http)
                    message = try await SuperOffice.currentPrincipal(apiBase: apiBase, accessToken: token, http: http)
                }
                checks.append(ConnectionCheck(name: "currentPrincipal", ok: true, durationMs: watch.elapsedMs, message: message))
            } catch {
                checks.append(ConnectionCheck(name: "currentPrincipal", ok: false, durationMs: watch.elapsedMs, message: error.message))
                throw error
            }
            return SystemTestResult(side: .superOffice, system: nil, checks: checks, error: nil)
        } catch {
            return SystemTestResult(side: .superOffice, system: nil, checks: checks, error: error)
        }
    }

    func superOfficeAccessToken(profileId: String, superOffice: SuperOffice, http: HTTPClient) async throws(RPCError) -> String {
        try await accessToken(profileId: profileId, system: .superOffice, tokenEndpoint: superOffice.tokenEndpoint, http: http) { response in
            response.error == "invalid_grant"
                ? RPCError(.reauthenticationRequired, "SuperOffice no longer accepts the sign-in (\(response.description ?? "invalid_grant")).",
                           hint: "Sign in with SuperOffice again.", details: ["error": "invalid_grant"])
                : OAuthErrors.standard(response)
        }
    }

    /// The cached access token, or a new one from the refresh token in the keyring; a rotated
    /// refresh token is stored before it is used, and kept when the answer carries none.
    func accessToken(profileId: String, system: SignInSystem, tokenEndpoint: String, http: HTTPClient, extraForm: [(String, String)] = [],
                     cache: Bool = true, mapError: @escaping @Sendable (OAuthErrorResponse) -> RPCError) async throws(RPCError) -> String {
        let refresh: @Sendable () async throws(RPCError) -> TokenResponse = { [self] () throws(RPCError) -> TokenResponse in
            let keyringSystem: KeyringSystem = switch system {
            case .superOffice: .superOffice
            case .microsoft365: .microsoft365
            case .google: .google
            }
            let key = SecretKey(profile: profileId, system: keyringSystem, kind: .refreshToken)
            guard let refreshToken = try await secrets.lookup(key) else {
                throw RPCError(.reauthenticationRequired, "The \(SignInPage.displayName(system)) refresh token is missing from the keyring.",
                               hint: "Sign in with \(SignInPage.displayName(system)) again.")
            }
            redactor.register(refreshToken)
            let (settings, clientSecret) = try await providerSettings(system)
            var form = [("grant_type", "refresh_token"), ("refresh_token", refreshToken), ("client_id", settings.clientId)] + extraForm
            if let clientSecret { form.append(("client_secret", clientSecret)) }
            let tokens = try await exchange(tokenEndpoint, form: form, http: http, mapError: mapError)
            if let rotated = tokens.refreshToken, rotated != refreshToken {
                try await secrets.store(rotated, for: key)
            }
            return tokens
        }
        guard cache else { return try await refresh().accessToken }
        return try await accessTokens.token(.init(profile: profileId, system: system), now: Clock.now(), refresh: refresh)
    }
}
