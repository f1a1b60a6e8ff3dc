import RPCCore
import Threading
import WizardContract

/// Names one secret with the contract's keyring attributes
/// (`profile`, `system`, `kind` under the schema `org.syncwizard.Secret`).
public struct SecretKey: Sendable, Hashable, CustomStringConvertible {
    public var profile: String
    /// The `system` attribute: a system's keyring name, or `provider`.
    public var system: String
    public var kind: SecretKind

    /// The `system` attribute of provider client secrets.
    public static let providerSystem = "provider"

    public init(profile: String, system: System, kind: SecretKind) {
        self.profile = profile
        self.system = system.keyringName
        self.kind = kind
    }

    /// A provider's client secret is not tied to a profile: it is filed under the provider's
    /// system name in `profile`, with `system=provider`.
    public static func clientSecret(for provider: System) -> SecretKey {
        var key = SecretKey(profile: provider.keyringName, system: provider, kind: .clientSecret)
        key.system = providerSystem
        return key
    }

    public var attributes: [(String, String)] {
        [("profile", profile), ("system", system), ("kind", kind.rawValue)]
    }

    public var description: String { "\(system) \(kind.rawValue) of \(profile)" }

    /// What a keyring browser (Seahorse) shows for the item.
    public var label: String {
        system == Self.providerSystem
            ? "syncwizard: \(profile) client secret"
            : "syncwizard: \(system) \(kind.rawValue) for profile \(profile)"
    }
}

/// Where secrets live. Every method may fail with `keyringUnavailable` or `keyringLocked`.
public protocol SecretStore: Sendable {
    /// A short description for logs ("desktop keyring (Secret Service)", "memory").
    var name: String { get }
    func store(_ secret: String, for key: SecretKey) async throws(RPCError)
    /// nil when there is no such secret (never when the keyring is locked: that throws).
    func lookup(_ key: SecretKey) async throws(RPCError) -> String?
    func delete(_ key: SecretKey) async throws(RPCError)
    /// Removes every secret whose `profile` attribute is `profile`.
    func deleteAll(profile: String) async throws(RPCError)
}

/// `--secret-store memory`: secrets for the life of the process only, chosen explicitly by
/// scripts and tests. Never used as a silent fallback when the keyring is missing.
public final class MemorySecretStore: SecretStore {
    public let name = "memory (not persisted)"
    private let secrets = MutexBoxStore()

    public init() {}

    public func store(_ secret: String, for key: SecretKey) async throws(RPCError) {
        secrets.set(key, secret)
    }

    public func lookup(_ key: SecretKey) async throws(RPCError) -> String? {
        secrets.get(key)
    }

    public func delete(_ key: SecretKey) async throws(RPCError) {
        secrets.set(key, nil)
    }

    public func deleteAll(profile: String) async throws(RPCError) {
        secrets.removeAll { $0.profile == profile }
    }
}

final class MutexBoxStore: Sendable {
    private let box = MutexBox<[SecretKey: String]>([:])
    func get(_ key: SecretKey) -> String? { box.withLock { $0[key] } }
    func set(_ key: SecretKey, _ value: String?) { box.withLock { $0[key] = value } }
    func removeAll(where predicate: (SecretKey) -> Bool) {
        box.withLock { dict in
            for key in dict.keys where predicate(key) { dict[key] = nil }
        }
    }
}
