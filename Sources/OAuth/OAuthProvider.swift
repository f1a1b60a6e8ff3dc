import RPCCore
import WizardContract

/// What one identity provider contributes to a sign-in: data, not flow. The flow itself
/// (authorization request, code exchange, id_token checks, refresh, redaction) exists once, in
/// `OAuthFlow` and `SignInManager`; a provider is one small type per system in its connector,
/// like a GNOME Online Accounts provider filling in the OAuth2 provider's vtable.
public protocol OAuthProvider: Sendable {
    var system: System { get }
    var clientId: String { get }
    /// The authorization endpoint, without query.
    var authorizeEndpoint: String { get }
    var tokenEndpoint: String { get }
    var jwksEndpoint: String { get }
    /// The loopback host of the redirect URI (Microsoft registers `localhost`, the others
    /// `127.0.0.1`); the listener binds 127.0.0.1 either way.
    var redirectHost: String { get }
    /// response_type, scope, prompt, … (client_id, state, nonce, PKCE and redirect_uri are added by the flow).
    func authorizationParameters(loginHint: String?) -> [(String, String)]
    /// `scope` sent again with the code exchange and refreshes (Microsoft asks for it), or nil.
    var tokenScope: String? { get }
    /// What the id_token must say (issuer, audience, nonce).
    func expectations(nonce: String?) -> IDTokenExpectations
    /// Fails when the granted scopes (token answer or redirect) lack what the synchronizer needs.
    func checkGranted(_ tokens: TokenResponse, redirect: [String: String]) throws(RPCError)
    /// The signed-in account as the contract shows it, from the validated id_token claims.
    func account(from claims: JSONObject) throws(RPCError) -> JSONObject
    /// The provider's errors as the contract's kinds (AADSTS codes, admin_policy_enforced, …).
    func mapError(_ response: OAuthErrorResponse) -> RPCError
}

extension OAuthProvider {
    public var redirectHost: String { "127.0.0.1" }
    public var tokenScope: String? { nil }
    public func checkGranted(_ tokens: TokenResponse, redirect: [String: String]) throws(RPCError) {}
    public func mapError(_ response: OAuthErrorResponse) -> RPCError { OAuthErrors.standard(response) }
}
