import CSecretShim
import RPCCore
import Threading
import WizardContract

/// Secrets in the desktop keyring through libsecret's Secret Service client.
///
/// libsecret's `*_sync` calls block on D-Bus (3–10 ms each, longer when a service is slow to
/// start), so they all run on one dedicated thread, never on Swift's cooperative pool. Each
/// call has a deadline: a Secret Service that never answers gives `keyringUnavailable`
/// instead of a hung request.
public final class LibsecretStore: SecretStore {
    public static let schemaName = "org.syncwizard.Secret"
    public let name = "desktop keyring (Secret Service via libsecret)"

    private let worker = SerialWorker(name: "syncwizard-keyring")
    private let timeoutSeconds: Double

    public init(timeoutSeconds: Double = 10) {
        self.timeoutSeconds = timeoutSeconds
    }

    static let unavailableHint =
        "Start a Secret Service (GNOME Keyring or KeePassXC) in your desktop session, or run "
        + "`gnome-keyring-daemon --start --components=secrets` inside a D-Bus session; scripts that need "
        + "no persistence can pass --secret-store memory."
    static let missingLibraryHint =
        "Install libsecret (Debian, Ubuntu: apt-get install libsecret-1-0) and start a Secret Service "
        + "(GNOME Keyring or KeePassXC); scripts that need no persistence can pass --secret-store memory."
    static let lockedHint = "Unlock the keyring (for example by logging in to the desktop, or with Seahorse) and try again."

    private func onWorker<T: Sendable>(_ what: String, _ body: @escaping @Sendable () -> Result<T, RPCError>) async throws(RPCError) -> T {
        let seconds = timeoutSeconds
        // libsecret keeps its first connection to the Secret Service; after the daemon was
        // restarted that connection points at nobody. Drop it and try once more.
        let retried: @Sendable () -> Result<T, RPCError> = {
            let first = body()
            if case .failure(let error) = first, error.kind == .keyringUnavailable {
                sw_secret_service_disconnect()
                return body()
            }
            return first
        }
        let outcome = await worker.run(
            timeout: seconds,
            onTimeout: {
                .failure(
                    RPCError(
                        .keyringUnavailable, "The keyring did not answer within \(Int(seconds)) seconds while trying to \(what).",
                        hint: Self.unavailableHint))
            }, retried)
        switch outcome {
        case .success(let value)?: return value
        case .failure(let error)?: throw error
        case nil: throw RPCError(.keyringUnavailable, "The keyring did not answer.", hint: Self.unavailableHint)
        }
    }

    public func store(_ secret: String, for key: SecretKey) async throws(RPCError) {
        try await onWorker("store the \(key)") {
            Libsecret.store(secret, key: key)
        }
    }

    public func lookup(_ key: SecretKey) async throws(RPCError) -> String? {
        try await onWorker("read the \(key)") {
            Libsecret.lookup(key)
        }
    }

    public func delete(_ key: SecretKey) async throws(RPCError) {
        try await onWorker("delete the \(key)") {
            Libsecret.clear(attributes: key.attributes)
        }
    }

    public func deleteAll(profile: String) async throws(RPCError) {
        try await onWorker("delete the secrets of profile \(profile)") {
            Libsecret.clear(attributes: [("profile", profile)])
        }
    }
}

/// The libsecret calls themselves; run only on the keyring thread. libsecret is loaded on the
/// first of them (dlopen in CSecretShim), never at start-up.
enum Libsecret {
    /// Items are written with the schema name (`xdg:schema = org.syncwizard.Secret`), but found
    /// and removed by the contract's attributes alone, so a secret another client filed under
    /// them (`secret-tool store profile … system … kind …`) is found and removed as well.
    /// Built on first use, after `unavailable` found libsecret loaded.
    nonisolated(unsafe) static let schema = makeSchema(dontMatchName: false)
    nonisolated(unsafe) static let matchSchema = makeSchema(dontMatchName: true)

    /// Built once; libsecret keeps a pointer to it for the life of the process.
    static func makeSchema(dontMatchName: Bool) -> OpaquePointer {
        let types = sw_secret_attributes_new()
        // Attribute type STRING is 0, so the table's values are NULL pointers.
        for name in ["profile", "system", "kind"] {
            sw_secret_attributes_add(types, name, nil)
        }
        let schema = sw_secret_schema_new(LibsecretStore.schemaName, dontMatchName ? 1 : 0, types)!
        sw_secret_attributes_free(types)
        return schema
    }

    /// `keyringUnavailable` when libsecret cannot be loaded (loads it on the first call).
    static func unavailable(_ what: String) -> RPCError? {
        guard let reason = sw_secret_load() else { return nil }
        return RPCError(
            .keyringUnavailable,
            "libsecret (libsecret-1.so.0) cannot be loaded, so syncwizard cannot \(what): \(String(cString: reason)).",
            hint: LibsecretStore.missingLibraryHint)
    }

    static func attributeTable(_ attributes: [(String, String)]) -> OpaquePointer {
        let table = sw_secret_attributes_new()!
        for (name, value) in attributes {
            sw_secret_attributes_add(table, name, value)
        }
        return table
    }

    static func store(_ secret: String, key: SecretKey) -> Result<Void, RPCError> {
        if let error = unavailable("store the \(key)") { return .failure(error) }
        // One item per key: drop copies another client filed under the same attributes.
        if case .failure(let error) = clear(attributes: key.attributes) { return .failure(error) }
        let table = attributeTable(key.attributes)
        defer { sw_secret_attributes_free(table) }
        var error: OpaquePointer?
        let ok = sw_secret_password_store(schema, table, key.label, secret, &error)
        if let error { return .failure(convert(error, doing: "store the \(key)")) }
        guard ok != 0 else {
            return .failure(RPCError(.keyringUnavailable, "The keyring refused to store the \(key).", hint: LibsecretStore.unavailableHint))
        }
        return .success(())
    }

    static func lookup(_ key: SecretKey) -> Result<String?, RPCError> {
        if let error = unavailable("read the \(key)") { return .failure(error) }
        let table = attributeTable(key.attributes)
        defer { sw_secret_attributes_free(table) }
        var error: OpaquePointer?
        let found = sw_secret_password_lookup(matchSchema, table, &error)
        if let error { return .failure(convert(error, doing: "read the \(key)")) }
        if let found {
            defer { sw_secret_password_free(found) }
            return .success(String(cString: found))
        }
        // A locked collection makes lookups return nothing, without an error: look for
        // matching items that are locked before calling the secret missing.
        switch lockedItemCount(table) {
        case .failure(let e): return .failure(e)
        case .success(0): return .success(nil)
        case .success: return .failure(lockedError("read the \(key)"))
        }
    }

    static func clear(attributes: [(String, String)]) -> Result<Void, RPCError> {
        if let error = unavailable("delete secrets") { return .failure(error) }
        let table = attributeTable(attributes)
        defer { sw_secret_attributes_free(table) }
        var error: OpaquePointer?
        _ = sw_secret_password_clear(matchSchema, table, &error)
        if let error { return .failure(convert(error, doing: "delete secrets")) }
        // Clearing skips locked items silently; they would outlive the profile.
        switch lockedItemCount(table) {
        case .failure(let e): return .failure(e)
        case .success(0): return .success(())
        case .success: return .failure(lockedError("delete secrets"))
        }
    }

    /// Matching items the Secret Service holds but will not show because they are locked.
    static func lockedItemCount(_ table: OpaquePointer) -> Result<Int, RPCError> {
        var error: OpaquePointer?
        guard let service = sw_secret_service_get(&error) else {
            if let error { return .failure(convert(error, doing: "connect to the keyring")) }
            return .failure(RPCError(.keyringUnavailable, "No Secret Service is reachable.", hint: LibsecretStore.unavailableHint))
        }
        defer { sw_secret_service_unref(service) }
        let locked = sw_secret_service_count_locked(service, matchSchema, table, &error)
        if let error { return .failure(convert(error, doing: "search the keyring")) }
        return .success(max(0, locked))
    }

    static func lockedError(_ what: String) -> RPCError {
        RPCError(.keyringLocked, "The keyring is locked, so syncwizard cannot \(what).", hint: LibsecretStore.lockedHint)
    }

    /// GLib errors become the contract's kinds here, once.
    static func convert(_ error: OpaquePointer, doing what: String) -> RPCError {
        defer { sw_secret_error_free(error) }
        let detail = sw_secret_error_message(error).map { String(cString: $0) } ?? "unknown error"
        if sw_secret_error_is_locked(error) != 0 {
            return lockedError(what)
        }
        return RPCError(
            .keyringUnavailable, "The keyring is not reachable, so syncwizard cannot \(what) (\(detail)).",
            hint: LibsecretStore.unavailableHint)
    }
}
