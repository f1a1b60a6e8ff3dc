import ConnectorCore
import HTTP
import RPCCore
import Threading
import WizardContract

/// A sign-in's result once the code is exchanged and the id_token checked.
public struct SignedIn: Sendable {
    public var tokens: TokenResponse
    public var claims: JSONObject
    public var account: JSONObject
}

/// Where a finished sign-in is kept (the refresh token in the keyring, the account in the
/// profile). The Wizard implements it; the flow calls it once the tokens are checked, so the
/// browser's page can say whether the sign-in was kept.
public protocol SignInKeeper: Sendable {
    func keep(_ signedIn: SignedIn, profileId: String, system: System, settings: JSONObject) async throws(RPCError)
}

/// The one OAuth 2.0 flow every provider goes through: the authorization-code exchange with
/// PKCE, id_token validation against the provider's key set (cached), refresh, and the device
/// code grant. Every token and code it sees is handed to `keepSecret` (the redactor) first.
public struct OAuthFlow: Sendable {
    public let http: any HTTPTransport
    public let keySets: KeySetCache
    public let keepSecret: @Sendable (String) -> Void
    public let now: @Sendable () -> Double

    public init(
        http: any HTTPTransport, keySets: KeySetCache, keepSecret: @escaping @Sendable (String) -> Void,
        now: @escaping @Sendable () -> Double
    ) {
        self.http = http
        self.keySets = keySets
        self.keepSecret = keepSecret
        self.now = now
    }

    /// The browser sign-in of `provider` for a profile; `extras` adds what a provider keeps
    /// beside the checked tokens (account members, profile settings).
    public func plan(
        _ provider: some OAuthProvider, profileId: String, clientSecret: String?, loginHint: String?,
        timeoutSeconds: Double, keeper: some SignInKeeper,
        parameters: [(String, String)]? = nil,
        extras: @escaping @Sendable (SignedIn) async -> (account: JSONObject, settings: JSONObject) = { _ in ([:], [:]) }
    ) -> SignInPlan {
        var query = [("client_id", provider.clientId)]
        query += parameters ?? provider.authorizationParameters(loginHint: loginHint)
        var plan = SignInPlan(
            profileId: profileId, system: provider.system, authorizeEndpoint: provider.authorizeEndpoint,
            parameters: query, redirectHost: provider.redirectHost, timeoutSeconds: timeoutSeconds,
            finish: { answer throws(RPCError) -> JSONObject in
                var signedIn = try await exchangeCode(answer, provider: provider, clientSecret: clientSecret)
                let (account, settings) = await extras(signedIn)
                for member in account.members { signedIn.account[member.key] = member.value }
                try await keeper.keep(signedIn, profileId: profileId, system: provider.system, settings: settings)
                return signedIn.account
            },
            mapError: provider.mapError)
        // While the user is at the provider's pages: the key set, and with it (same host at
        // Microsoft and SuperOffice) a pooled TLS connection for the token request after the
        // callback. libcurl's connection cache belongs to the multi handle every request shares;
        // a CURLOPT_CONNECT_ONLY connection would not do, libcurl never hands those to others.
        let keySets = self.keySets
        let jwks = provider.jwksEndpoint
        plan.prepare = { await keySets.prefetch(jwks) }
        return plan
    }

    /// Code → tokens → checked id_token → account.
    public func exchangeCode(_ answer: SignInAnswer, provider: some OAuthProvider, clientSecret: String?) async throws(RPCError) -> SignedIn {
        keepSecret(answer.code)
        var form = [
            ("grant_type", "authorization_code"), ("code", answer.code), ("redirect_uri", answer.redirectURI),
            ("client_id", provider.clientId),
        ]
        if let scope = provider.tokenScope { form.append(("scope", scope)) }
        if let verifier = answer.codeVerifier { form.append(("code_verifier", verifier)) }
        if let clientSecret { form.append(("client_secret", clientSecret)) }
        // The key set beside the token request, not after it (a no-op once prepare fetched it).
        let keySets = self.keySets
        let jwks = provider.jwksEndpoint
        async let keysReady: Void = keySets.prefetch(jwks)
        let tokens: TokenResponse
        do {
            tokens = try await request(provider.tokenEndpoint, form: form, mapError: provider.mapError)
        } catch {
            await keysReady
            throw error
        }
        await keysReady
        return try await signedIn(tokens, provider: provider, nonce: answer.nonce, redirect: answer.extra)
    }

    /// Checks granted scopes and the id_token of a token answer, and reads the account.
    public func signedIn(_ tokens: TokenResponse, provider: some OAuthProvider, nonce: String?, redirect: [String: String] = [:]) async throws(RPCError)
        -> SignedIn
    {
        try provider.checkGranted(tokens, redirect: redirect)
        guard let idToken = tokens.idToken else {
            throw RPCError(.invalidToken, "\(provider.system.displayName) answered without an id_token.")
        }
        let keys = try await keySets.keys(provider.jwksEndpoint, forToken: idToken)
        let claims = try IDTokenValidator.validate(idToken, keys: keys, expect: provider.expectations(nonce: nonce), now: now())
        return SignedIn(tokens: tokens, claims: claims, account: try provider.account(from: claims))
    }

    /// A new access token from a refresh token; `scope` overrides the provider's token scope
    /// (a token for another resource, e.g. Exchange Online).
    public func refresh(_ refreshToken: String, provider: some OAuthProvider, clientSecret: String?, scope: String? = nil) async throws(RPCError)
        -> TokenResponse
    {
        keepSecret(refreshToken)
        var form = [("grant_type", "refresh_token"), ("refresh_token", refreshToken), ("client_id", provider.clientId)]
        if let scope = scope ?? provider.tokenScope { form.append(("scope", scope)) }
        if let clientSecret { form.append(("client_secret", clientSecret)) }
        return try await request(provider.tokenEndpoint, form: form, mapError: provider.mapError)
    }

    /// A token request whose answer's secrets are registered for redaction before anything else.
    public func request(_ url: String, form: [(String, String)], mapError: @Sendable (OAuthErrorResponse) -> RPCError) async throws(RPCError) -> TokenResponse {
        do {
            let tokens = try await TokenClient(http: http).request(url, form: form)
            keepSecrets(of: tokens)
            return tokens
        } catch {
            throw Self.rpcError(error, mapError)
        }
    }

    /// Every token of an answer goes to the redactor before anything else sees it.
    func keepSecrets(of tokens: TokenResponse) {
        for secret in [tokens.accessToken, tokens.refreshToken, tokens.idToken].compactMap({ $0 }) { keepSecret(secret) }
    }

    static func rpcError(_ failure: TokenEndpointFailure, _ mapError: @Sendable (OAuthErrorResponse) -> RPCError) -> RPCError {
        switch failure {
        case .oauth(let response, _): mapError(response)
        case .transport(let rpc): rpc
        }
    }

    // MARK: - Device code (RFC 8628)

    /// Asks for a device code; the user enters `userCode` at `verificationUri`.
    public func deviceAuthorization(_ endpoint: String, provider: some OAuthProvider, scope: String) async throws(RPCError) -> DeviceAuthorization {
        let answer: JSONValue
        do {
            answer = try await TokenClient(http: http).post(endpoint, form: [("client_id", provider.clientId), ("scope", scope)])
        } catch {
            throw Self.rpcError(error, provider.mapError)
        }
        guard let device = DeviceAuthorization(json: answer) else {
            throw RPCError(.serverError, "\(provider.system.displayName)'s device code answer is incomplete.", details: ["status": 200, "responseCode": .null])
        }
        keepSecret(device.deviceCode)
        return device
    }

    /// Polls the token endpoint until the user is done: authorization_pending waits the
    /// interval, slow_down adds 5 s (§3.5), anything else ends it with the provider's kind.
    public func pollDeviceCode(_ device: DeviceAuthorization, provider: some OAuthProvider, clientSecret: String?) async throws(RPCError) -> SignedIn {
        var wait = device.interval
        var form = [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", provider.clientId), ("device_code", device.deviceCode)]
        if let clientSecret { form.append(("client_secret", clientSecret)) }
        let client = TokenClient(http: http)
        while true {
            do {
                try await sleep(seconds: wait)
            } catch {
                throw RPCError(.signInCancelled, "The sign-in was cancelled.")
            }
            let tokens: TokenResponse
            do throws(TokenEndpointFailure) {
                tokens = try await client.request(provider.tokenEndpoint, form: form)
            } catch {
                switch error {
                case .oauth(let response, _) where response.error == "authorization_pending":
                    break
                case .oauth(let response, _) where response.error == "slow_down":
                    wait = min(wait + 5, DeviceAuthorization.intervalRange.upperBound)
                default:
                    throw Self.rpcError(error, provider.mapError)
                }
                continue
            }
            keepSecrets(of: tokens)
            return try await signedIn(tokens, provider: provider, nonce: nil)
        }
    }
}
