import RPCCore
import Threading
import WizardContract

/// Access tokens in memory, refreshed from the refresh token in the keyring when they are about
/// to expire. A rotated refresh token is stored before the new access token is used, so a crash
/// cannot leave only a spent refresh token behind. One refresh at a time per key.
public actor AccessTokens {
    public struct Key: Hashable, Sendable {
        public var profile: String
        public var system: System
        public init(profile: String, system: System) {
            self.profile = profile
            self.system = system
        }
    }

    struct Cached {
        var token: String
        var expires: Double
        var scope: String?
    }

    private var cache: [Key: Cached] = [:]
    private var inFlight: [Key: Task<TokenResponse, any Error>] = [:]

    public init() {}

    /// Remembers a token just obtained (at sign-in).
    public func remember(_ key: Key, _ response: TokenResponse, now: Double) {
        cache[key] = Cached(token: response.accessToken, expires: now + (response.expiresIn ?? 3600), scope: response.scope)
    }

    public func forget(_ key: Key) {
        cache[key] = nil
    }

    public func forgetProfile(_ profile: String) {
        cache = cache.filter { $0.key.profile != profile }
    }

    /// A valid access token: the cached one while it has more than a minute left, otherwise a
    /// fresh one from `refresh` (which stores a rotated refresh token itself).
    public func token(_ key: Key, now: Double, refresh: @escaping @Sendable () async throws(RPCError) -> TokenResponse) async throws(RPCError) -> String {
        if let cached = cache[key], cached.expires - 60 > now { return cached.token }
        let task: Task<TokenResponse, any Error>
        if let running = inFlight[key] {
            task = running
        } else {
            task = Task { () async throws -> TokenResponse in try await refresh() }
            inFlight[key] = task
        }
        defer { inFlight[key] = nil }
        do {
            let response = try await task.value
            remember(key, response, now: now)
            return response.accessToken
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(.internalError, "Refreshing the access token failed unexpectedly.")
        }
    }
}
