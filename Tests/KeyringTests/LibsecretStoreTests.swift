import Keyring
import RPCCore
import TestSupport
import Testing
import WizardContract

/// Against a real gnome-keyring-daemon in a throwaway D-Bus session (scripts/with-test-keyring.sh,
/// which `make test` uses); skipped when run outside it.
@Suite(.enabled(if: TestPaths.hasTestKeyring, "needs scripts/with-test-keyring.sh"))
struct LibsecretStoreTests {
    let store = LibsecretStore()
    let profile = "0a1b2c3d-0000-4000-8000-" + String(UInt64.random(in: 100_000_000_000...999_999_999_999))

    @Test func storedSecretIsFoundUnderTheContractAttributesByAnotherClient() async throws {
        let key = SecretKey(profile: profile, system: .exchange, kind: .password)
        try await store.store("p@ss w0rd ü", for: key)
        #expect(try await store.lookup(key) == "p@ss w0rd ü")
        #expect(try SecretTool.lookup(["profile": profile, "system": "exchange", "kind": "password"]) == "p@ss w0rd ü")
        let search = try SecretTool.run(["search", "--all", "profile", profile])
        #expect(search.output.contains("schema = org.syncwizard.Secret"), "\(search.output)")
    }

    @Test func storingAgainReplacesTheSecret() async throws {
        let key = SecretKey(profile: profile, system: .google, kind: .refreshToken)
        try await store.store("first", for: key)
        try await store.store("second", for: key)
        #expect(try await store.lookup(key) == "second")
        let search = try SecretTool.run(["search", "--all", "profile", profile, "system", "google"])
        #expect(search.output.components(separatedBy: "secret = ").count - 1 <= 1)
    }

    @Test func secretFiledByAnotherClientIsFoundAndReplacedNotDuplicated() async throws {
        let key = SecretKey(profile: profile, system: .exchange, kind: .password)
        try SecretTool.store("from-secret-tool", label: "t", ["profile": profile, "system": "exchange", "kind": "password"])
        #expect(try await store.lookup(key) == "from-secret-tool")
        try await store.store("ours", for: key)
        let search = try SecretTool.run(["search", "--all", "profile", profile, "system", "exchange"])
        #expect(search.output.components(separatedBy: "secret = ").count - 1 == 1)
        #expect(try await store.lookup(key) == "ours")
        try await store.deleteAll(profile: profile)
    }

    @Test func missingSecretIsNilNotAnError() async throws {
        #expect(try await store.lookup(SecretKey(profile: profile, system: .microsoft365, kind: .refreshToken)) == nil)
    }

    @Test func deleteAllRemovesEveryItemOfTheProfileAndNothingElse() async throws {
        let other = "ffffffff-0000-4000-8000-" + String(UInt64.random(in: 100_000_000_000...999_999_999_999))
        try await store.store("a", for: SecretKey(profile: profile, system: .exchange, kind: .password))
        try await store.store("b", for: SecretKey(profile: profile, system: .superOffice, kind: .refreshToken))
        try await store.store("c", for: SecretKey(profile: other, system: .exchange, kind: .password))
        try await store.deleteAll(profile: profile)
        #expect(try SecretTool.lookup(["profile": profile, "system": "exchange", "kind": "password"]) == nil)
        #expect(try SecretTool.lookup(["profile": profile, "system": "superOffice", "kind": "refreshToken"]) == nil)
        #expect(try SecretTool.lookup(["profile": other, "system": "exchange", "kind": "password"]) == "c")
        try await store.deleteAll(profile: other)
    }

    @Test func deleteOfOneKeyLeavesTheOthers() async throws {
        let a = SecretKey(profile: profile, system: .exchange, kind: .password)
        let b = SecretKey(profile: profile, system: .superOffice, kind: .refreshToken)
        try await store.store("a", for: a)
        try await store.store("b", for: b)
        try await store.delete(a)
        #expect(try await store.lookup(a) == nil)
        #expect(try await store.lookup(b) == "b")
        try await store.deleteAll(profile: profile)
    }

    @Test func providerClientSecretsUseSystemProvider() async throws {
        let key = SecretKey.clientSecret(for: .google)
        #expect(key.attributes.map(\.1) == ["google", "provider", "clientSecret"])
    }
}

@Suite struct MemorySecretStoreTests {
    @Test func keepsSecretsForTheProcessOnly() async throws {
        let store = MemorySecretStore()
        let key = SecretKey(profile: "p", system: .exchange, kind: .password)
        try await store.store("x", for: key)
        #expect(try await store.lookup(key) == "x")
        try await store.deleteAll(profile: "p")
        #expect(try await store.lookup(key) == nil)
    }
}
