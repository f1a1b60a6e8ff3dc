import RPCCore
import WizardContract

/// Access tokens for a signed-in system's checks, without knowing where they come from (the
/// Wizard's cache and the keyring's refresh token; a test's constant).
public struct AccessTokenSource: Sendable {
    /// `scope` nil: the provider's own; `cached` false: never from or into the cache.
    public typealias Fetch = @Sendable (_ scope: String?, _ cached: Bool) async throws(RPCError) -> String
    let fetch: Fetch
    /// Drops the cached token (the provider rejected it).
    let forget: @Sendable () async -> Void
    /// A refresh made now, not from the cache: diagnosis wants the provider's own answer
    /// (an error such as admin_policy_enforced or AADSTS700016, and the scopes it grants).
    let refreshNow: (@Sendable () async throws(RPCError) -> TokenResponse)?

    public init(
        fetch: @escaping Fetch, forget: @escaping @Sendable () async -> Void,
        refreshNow: (@Sendable () async throws(RPCError) -> TokenResponse)? = nil
    ) {
        self.fetch = fetch
        self.forget = forget
        self.refreshNow = refreshNow
    }

    /// A fresh access token and the scopes granted with it (nil when the provider names none).
    public func freshGrant() async throws(RPCError) -> (token: String, scope: String?) {
        guard let refreshNow else { return (try await fetch(nil, false), nil) }
        let response = try await refreshNow()
        return (response.accessToken, response.scope)
    }

    public func token() async throws(RPCError) -> String { try await fetch(nil, true) }

    /// A token for another resource (Exchange Online beside Graph), not cached.
    public func token(scope: String) async throws(RPCError) -> String { try await fetch(scope, false) }

    /// The cached token dropped (the provider rejected it) and a refreshed one.
    public func refreshed() async throws(RPCError) -> String {
        await forget()
        return try await token()
    }

    /// A cached token the provider already rejects (expired or revoked early) is replaced by a
    /// refreshed one, once; `probe` is a cheap call that tells. Other failures of the probe are
    /// left for the named checks to report.
    public func validated(probe: (String) async throws(RPCError) -> Void) async throws(RPCError) -> String {
        let first = try await token()
        do {
            try await probe(first)
            return first
        } catch  where error.kind == .reauthenticationRequired {
            await forget()
            return try await token()
        } catch {
            return first
        }
    }

    /// `body` with the cached token, and once more with a refreshed one if it was rejected.
    public func retryingOnRejection<T: Sendable>(_ body: (String) async throws(RPCError) -> T) async throws(RPCError) -> T {
        let first = try await token()
        do {
            return try await body(first)
        } catch  where error.kind == .reauthenticationRequired {
            await forget()
            return try await body(try await token())
        }
    }
}
