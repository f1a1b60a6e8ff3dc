import ConnectorCore
import GoogleConnector
import HTTP
import JSONRPC
import Keyring
import Microsoft365Connector
import OAuth
import Threading
import WizardProtocol

/// Sign in with Microsoft (browser, device code, tenant-wide admin consent) and with Google,
/// and the calendar-side tests of both.
extension WizardService {
    func startCalendarSignIn(_ params: StartSignIn.Params) async throws(RPCError) -> JSONValue {
        let profile = try await store.get(params.profileId)
        let system: CalendarSystem = params.system == .google ? .google : .microsoft365
        _ = try requireCalendarSystem(profile, in: [system], for: "signing in with \(SignInPage.displayName(params.system))")
        let (settings, clientSecret) = try await providerSettings(params.system)
        let http = try network.http()
        if params.system == .google {
            return try await signIns.start(googlePlan(params, settings: settings, clientSecret: clientSecret, http: http),
                                           now: Clock.now(), isoDate: Clock.iso8601).json
        }
        let microsoft = Microsoft365(tenant: settings.tenant, clientId: settings.clientId)
        if params.adminConsent {
            return try await signIns.start(adminConsentPlan(params, microsoft: microsoft, clientSecret: clientSecret, http: http),
                                           now: Clock.now(), isoDate: Clock.iso8601).json
        }
        if params.flow == .deviceCode {
            return try await startDeviceCode(params, microsoft: microsoft, clientSecret: clientSecret, http: http)
        }
        return try await signIns.start(microsoftPlan(params, microsoft: microsoft, clientSecret: clientSecret, http: http),
                                       now: Clock.now(), isoDate: Clock.iso8601).json
    }

    /// Tokens in: refresh token to the keyring, the account and a fresh revision to the profile.
    func keepCalendarSignIn(profileId: String, system: CalendarSystem, tokens: TokenResponse, account: JSONObject,
                            settings extra: JSONObject = [:]) async throws(RPCError) {
        guard let refreshToken = tokens.refreshToken else {
            throw RPCError(.invalidToken, "\(WizardStateEvaluator.displayName(system)) answered without a refresh token.",
                           hint: "Check that the app requests offline access.")
        }
        let keyringSystem: KeyringSystem = system == .google ? .google : .microsoft365
        try await secrets.store(refreshToken, for: SecretKey(profile: profileId, system: keyringSystem, kind: .refreshToken))
        await accessTokens.remember(.init(profile: profileId, system: system == .google ? .google : .microsoft365), tokens, now: Clock.now())
        try await store.update(profileId) { profile in
            var c = profile.connection(for: system)
            c.hasRefreshToken = true
            c.account = account
            for member in extra.members { c.settings[member.key] = member.value }
            c.lastTest = nil
            c.revision += 1
            profile.calendars[system] = c
        }
        logger.info("Profile \(profileId) signed in to \(system.rawValue).")
    }

    // MARK: - Microsoft

    func microsoftPlan(_ params: StartSignIn.Params, microsoft: Microsoft365, clientSecret: String?, http: HTTPClient,
                       prompt: String = "consent", adminConsent: Bool = false) -> SignInPlan {
        let profileId = params.profileId
        return SignInPlan(
            profileId: profileId, system: .microsoft365, authorizeEndpoint: microsoft.authorizeEndpoint,
            parameters: microsoft.authorizationParameters(loginHint: params.loginHint, prompt: prompt),
            redirectHost: "localhost",  // Microsoft registers http://localhost and ignores the port
            timeoutSeconds: signInTimeoutSeconds,
            finish: { [self] answer throws(RPCError) -> JSONObject in
                redactor.register(answer.code)
                var form = [("client_id", microsoft.clientId), ("grant_type", "authorization_code"), ("code", answer.code),
                            ("redirect_uri", answer.redirectURI), ("scope", Microsoft365.delegatedScope)]
                if let verifier = answer.codeVerifier { form.append(("code_verifier", verifier)) }
                if let clientSecret { form.append(("client_secret", clientSecret)) }
                let tokens = try await exchange(microsoft.tokenEndpoint, form: form, http: http, mapError: Microsoft365.error)
                return try await finishMicrosoft(profileId: profileId, microsoft: microsoft, tokens: tokens, nonce: answer.nonce, http: http,
                                                 adminConsent: adminConsent)
            },
            mapError: Microsoft365.error)
    }

    func finishMicrosoft(profileId: String, microsoft: Microsoft365, tokens: TokenResponse, nonce: String?, http: HTTPClient,
                         adminConsent: Bool = false) async throws(RPCError) -> JSONObject {
        let missing = Microsoft365.missingScopes(granted: tokens.scope)
        guard missing.isEmpty else {
            throw RPCError(.scopesNotGranted, "Microsoft did not grant every permission the synchronizer needs (\(missing.joined(separator: ", ")) missing).",
                           hint: "Sign in again as a Global Administrator and accept all requested permissions, ticking \"Consent on behalf of your organization\".",
                           details: ["missingScopes": .array(missing.map(JSONValue.string))])
        }
        guard let idToken = tokens.idToken else { throw RPCError(.invalidToken, "Microsoft answered without an id_token.") }
        let keys = try await network.keySets().keys(microsoft.jwksEndpoint, forToken: idToken)
        let claims = try IDTokenValidator.validate(idToken, keys: keys, expect: microsoft.expectations(nonce: nonce), now: Clock.now())
        var account = Microsoft365.account(from: claims)
        var extra: JSONObject = [:]
        if adminConsent {
            account["adminConsent"] = true
            extra["adminConsentGranted"] = true
            extra["tenantId"] = account["tenantId"] ?? .null
        }
        if let upn = account["userPrincipalName"]?.stringValue {
            extra["discoveredEwsUrl"] = .string(await Microsoft365.discoverEWS(email: upn, http: http))
        }
        try await keepCalendarSignIn(profileId: profileId, system: .microsoft365, tokens: tokens, account: account, settings: extra)
        return account
    }

    /// RFC 8628 for front ends without a browser: the user enters userCode at verificationUri.
    func startDeviceCode(_ params: StartSignIn.Params, microsoft: Microsoft365, clientSecret: String?, http: HTTPClient) async throws(RPCError) -> JSONValue {
        let answer: JSONValue
        do {
            answer = try await TokenClient(http: http).post(microsoft.deviceCodeEndpoint,
                                                            form: [("client_id", microsoft.clientId), ("scope", Microsoft365.delegatedScope)])
        } catch {
            switch error {
            case .oauth(let response, _): throw Microsoft365.error(response)
            case .transport(let rpc): throw rpc
            }
        }
        guard let device = DeviceAuthorization(json: answer) else {
            throw RPCError(.serverError, "Microsoft's device code answer is incomplete.", details: ["status": 200, "responseCode": .null])
        }
        let deviceCode = device.deviceCode
        redactor.register(deviceCode)
        let profileId = params.profileId
        return await signIns.startDeviceCode(
            profileId: profileId, system: .microsoft365, userCode: device.userCode, verificationUri: device.verificationUri,
            expiresIn: device.expiresIn, message: device.message, isoDate: Clock.iso8601, now: Clock.now()
        ) { [self] () throws(RPCError) -> JSONObject in
            var wait = device.interval
            let client = TokenClient(http: http)
            var form = [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", microsoft.clientId), ("device_code", deviceCode)]
            if let clientSecret { form.append(("client_secret", clientSecret)) }
            while true {
                do {
                    try await sleep(seconds: wait)
                } catch {
                    throw RPCError(.signInCancelled, "The sign-in was cancelled.")
                }
                let tokens: TokenResponse
                do throws(TokenEndpointFailure) {
                    tokens = try await client.request(microsoft.tokenEndpoint, form: form)
                } catch {
                    switch error {
                    case .oauth(let response, _) where response.error == "authorization_pending":
                        continue
                    case .oauth(let response, _) where response.error == "slow_down":
                        wait = min(wait + 5, DeviceAuthorization.intervalRange.upperBound)  // RFC 8628 §3.5
                        continue
                    case .oauth(let response, _):
                        throw Microsoft365.error(response)
                    case .transport(let rpc):
                        throw rpc
                    }
                }
                for secret in [tokens.accessToken, tokens.refreshToken, tokens.idToken].compactMap({ $0 }) { redactor.register(secret) }
                return try await finishMicrosoft(profileId: profileId, microsoft: microsoft, tokens: tokens, nonce: nil, http: http)
            }
        }
    }

    /// Tenant-wide admin consent for the vendor's public (PKCE) client, in one browser tab
    /// (protocols.md §7.3): `/{tenant}/v2.0/adminconsent` grants the delegated permissions for the
    /// whole organization and answers with no code; the loopback page then sends the tab on to
    /// the ordinary authorization request, whose code + PKCE gives the delegated tokens. No client
    /// secret is needed; one that is configured is sent with the code exchange.
    func adminConsentPlan(_ params: StartSignIn.Params, microsoft: Microsoft365, clientSecret: String?, http: HTTPClient) throws(RPCError) -> SignInPlan {
        guard microsoft.tenant.lowercased() != "common" else {
            throw .invalidParams(field: "adminConsent", "Admin consent needs the tenant (its id, its domain, or 'organizations'), not 'common': set it with setProviderSettings.")
        }
        var plan = microsoftPlan(params, microsoft: microsoft, clientSecret: clientSecret, http: http, prompt: "select_account", adminConsent: true)
        plan.consentLeg = ConsentLeg(endpoint: microsoft.adminConsentEndpoint, parameters: microsoft.adminConsentParameters()) { answer in
            answer["admin_consent"]?.lowercased() == "true" ? nil
                : RPCError(.consentDenied, "The administrator did not grant consent for the organization.", hint: Microsoft365.consentHint)
        }
        return plan
    }

    // MARK: - Google

    func googlePlan(_ params: StartSignIn.Params, settings: ProviderSettings, clientSecret: String?, http: HTTPClient) -> SignInPlan {
        let google = Google(clientId: settings.clientId)
        let profileId = params.profileId
        return SignInPlan(
            profileId: profileId, system: .google, authorizeEndpoint: Google.authorizeEndpoint,
            parameters: google.authorizationParameters(loginHint: params.loginHint), timeoutSeconds: signInTimeoutSeconds,
            finish: { [self] answer throws(RPCError) -> JSONObject in
                redactor.register(answer.code)
                var form = [("grant_type", "authorization_code"), ("code", answer.code), ("redirect_uri", answer.redirectURI),
                            ("client_id", google.clientId)]
                if let verifier = answer.codeVerifier { form.append(("code_verifier", verifier)) }
                if let clientSecret { form.append(("client_secret", clientSecret)) }
                let tokens = try await exchange(Google.tokenEndpoint, form: form, http: http, mapError: google.error)
                let missing = Google.missingScopes(granted: tokens.scope ?? answer.extra["scope"])
                guard missing.isEmpty else { throw Google.scopesError(missing) }
                guard let idToken = tokens.idToken else { throw RPCError(.invalidToken, "Google answered without an id_token.") }
                let keys = try await network.keySets().keys(Google.jwksEndpoint, forToken: idToken)
                let claims = try IDTokenValidator.validate(idToken, keys: keys, expect: google.expectations(nonce: answer.nonce), now: Clock.now())
                let account = Google.account(from: claims)
                try await keepCalendarSignIn(profileId: profileId, system: .google, tokens: tokens, account: account)
                return account
            },
            mapError: google.error)
    }

    // MARK: - Tests

    func testMicrosoft365(_ profile: Profile, progress: @escaping ProgressReporter) async -> ([ConnectionCheck], RPCError?) {
        let c = profile.connection(for: .microsoft365)
        guard c.hasRefreshToken else {
            return ([], RPCError(.notSignedIn, "Microsoft 365 is not signed in yet.", hint: "Sign in with Microsoft first."))
        }
        var checks: [ConnectionCheck] = []
        do throws(RPCError) {
            let (settings, _) = try await providerSettings(.microsoft365)
            let microsoft = Microsoft365(tenant: settings.tenant, clientId: settings.clientId)
            let http = try network.http()
            let token = try await freshOnRejection(profile.id, .microsoft365) { () throws(RPCError) in
                try await accessToken(profileId: profile.id, system: .microsoft365, tokenEndpoint: microsoft.tokenEndpoint, http: http,
                                      extraForm: [("scope", Microsoft365.delegatedScope)], mapError: Microsoft365.error)
            } probe: { token throws(RPCError) in _ = try await Microsoft365.graphGET("/v1.0/me", .me, token: token, http: http) }
            try await check("graphDirectory", into: &checks, progress: progress, "Reading the directory through Microsoft Graph.") { () throws(RPCError) in
                try await Microsoft365.readDirectory(token: token, http: http)
            }
            try await check("graphCalendar", into: &checks, progress: progress, "Opening the calendar through Microsoft Graph.") { () throws(RPCError) in
                try await Microsoft365.readCalendar(token: token, http: http)
            }
            try await check("organizationConsent", into: &checks, progress: progress, "Checking the consent covers the whole organization.") { () throws(RPCError) in
                try await microsoft.checkOrganizationConsent(token: token, http: http)
            }
            if let ews = c.settings["ewsUrl"]?.stringValue, let mailbox = c.account?["userPrincipalName"]?.stringValue {
                try await check("ewsCalendar", into: &checks, progress: progress, "Opening the calendar through EWS at \(ews).") { () throws(RPCError) in
                    let outlookToken = try await accessToken(profileId: profile.id, system: .microsoft365, tokenEndpoint: microsoft.tokenEndpoint, http: http,
                                                             extraForm: [("scope", "\(Microsoft365.outlook)/EWS.AccessAsUser.All offline_access")],
                                                             cache: false, mapError: Microsoft365.error)
                    return try await Microsoft365.ewsCalendar(ewsUrl: ews, mailbox: mailbox, token: outlookToken, http: http)
                }
            }
            return (checks, nil)
        } catch {
            return (checks, error)
        }
    }

    func testGoogle(_ profile: Profile, progress: @escaping ProgressReporter) async -> ([ConnectionCheck], RPCError?) {
        guard profile.connection(for: .google).hasRefreshToken else {
            return ([], RPCError(.notSignedIn, "Google Workspace is not signed in yet.", hint: "Sign in with Google first."))
        }
        var checks: [ConnectionCheck] = []
        do throws(RPCError) {
            let (settings, _) = try await providerSettings(.google)
            let google = Google(clientId: settings.clientId)
            let http = try network.http()
            let token = try await freshOnRejection(profile.id, .google) { () throws(RPCError) in
                try await accessToken(profileId: profile.id, system: .google, tokenEndpoint: Google.tokenEndpoint, http: http, mapError: google.error)
            } probe: { token throws(RPCError) in _ = try await Google.primaryCalendar(token: token, http: http) }
            try await check("directoryUsers", into: &checks, progress: progress, "Listing the domain's users through the Directory API.") { () throws(RPCError) in
                try await Google.listUsers(token: token, http: http)
            }
            try await check("primaryCalendar", into: &checks, progress: progress, "Opening the primary calendar.") { () throws(RPCError) in
                try await Google.primaryCalendar(token: token, http: http)
            }
            return (checks, nil)
        } catch {
            return (checks, error)
        }
    }

    /// A cached access token the provider already rejects (expired or revoked early) is dropped
    /// and replaced by a refreshed one, once; `probe` is a cheap call that tells.
    func freshOnRejection(_ profileId: String, _ system: SignInSystem, _ token: () async throws(RPCError) -> String,
                          probe: (String) async throws(RPCError) -> Void) async throws(RPCError) -> String {
        let first = try await token()
        do {
            try await probe(first)
            return first
        } catch where error.kind == .reauthenticationRequired {
            await accessTokens.forget(.init(profile: profileId, system: system))
            return try await token()
        } catch {
            return first  // other failures are for the named checks to report
        }
    }

    /// Runs one named check, timing it; a failure is recorded and ends the test.
    func check(_ name: String, into checks: inout [ConnectionCheck], progress: ProgressReporter, _ what: String,
               _ body: () async throws(RPCError) -> String) async throws(RPCError) {
        progress("testConnection", what, nil)
        let watch = Stopwatch()
        do {
            let message = try await body()
            checks.append(ConnectionCheck(name: name, ok: true, durationMs: watch.elapsedMs, message: message))
        } catch {
            checks.append(ConnectionCheck(name: name, ok: false, durationMs: watch.elapsedMs, message: error.message))
            throw error
        }
    }
}
