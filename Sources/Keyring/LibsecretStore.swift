import CSecret
import Threading
import WizardProtocol

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
    static let lockedHint = "Unlock the keyring (for example by logging in to the desktop, or with Seahorse) and try again."

    private func onWorker<T: Sendable>(_ what: String, _ body: @escaping @Sendable () -> Result<T, RPCError>) async throws(RPCError) -> T {
        let seconds = timeoutSeconds
        let outcome = await worker.run(timeout: seconds, onTimeout: {
            .failure(RPCError(.keyringUnavailable, "The keyring did not answer within \(Int(seconds)) seconds while trying to \(what).",
                              hint: Self.unavailableHint))
        }, body)
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

/// The libsecret calls themselves; run only on the keyring thread.
enum Libsecret {
    /// Items are written with the schema name (`xdg:schema = org.syncwizard.Secret`), but found
    /// and removed by the contract's attributes alone, so a secret another client filed under
    /// them (`secret-tool store profile … system … kind …`) is found and removed as well.
    nonisolated(unsafe) static let schema = makeSchema(SECRET_SCHEMA_NONE)
    nonisolated(unsafe) static let matchSchema = makeSchema(SECRET_SCHEMA_DONT_MATCH_NAME)

    /// Built once; libsecret keeps a pointer to it for the life of the process.
    static func makeSchema(_ flags: SecretSchemaFlags) -> UnsafeMutablePointer<SecretSchema> {
        let types = g_hash_table_new(g_str_hash, g_str_equal)
        // Attribute type STRING is 0, so the table's values are NULL pointers.
        for name in ["profile", "system", "kind"] {
            g_hash_table_insert(types, g_strdup(name), nil)
        }
        let schema = secret_schema_newv(LibsecretStore.schemaName, flags, types)!
        g_hash_table_unref(types)
        return schema
    }

    static func attributeTable(_ attributes: [(String, String)]) -> OpaquePointer {
        let table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free)!
        for (name, value) in attributes {
            g_hash_table_insert(table, g_strdup(name), g_strdup(value))
        }
        return table
    }

    static func store(_ secret: String, key: SecretKey) -> Result<Void, RPCError> {
        // One item per key: drop copies another client filed under the same attributes.
        if case .failure(let error) = clear(attributes: key.attributes) { return .failure(error) }
        let table = attributeTable(key.attributes)
        defer { g_hash_table_unref(table) }
        var error: UnsafeMutablePointer<GError>?
        let ok = secret_password_storev_sync(schema, table, nil, key.label, secret, nil, &error)
        if let error { return .failure(convert(error, doing: "store the \(key)")) }
        guard ok != 0 else {
            return .failure(RPCError(.keyringUnavailable, "The keyring refused to store the \(key).", hint: LibsecretStore.unavailableHint))
        }
        return .success(())
    }

    static func lookup(_ key: SecretKey) -> Result<String?, RPCError> {
        let table = attributeTable(key.attributes)
        defer { g_hash_table_unref(table) }
        var error: UnsafeMutablePointer<GError>?
        let found = secret_password_lookupv_sync(matchSchema, table, nil, &error)
        if let error { return .failure(convert(error, doing: "read the \(key)")) }
        if let found {
            defer { secret_password_free(found) }
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
        let table = attributeTable(attributes)
        defer { g_hash_table_unref(table) }
        var error: UnsafeMutablePointer<GError>?
        _ = secret_password_clearv_sync(matchSchema, table, nil, &error)
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
        var error: UnsafeMutablePointer<GError>?
        guard let service = secret_service_get_sync(SECRET_SERVICE_NONE, nil, &error) else {
            if let error { return .failure(convert(error, doing: "connect to the keyring")) }
            return .failure(RPCError(.keyringUnavailable, "No Secret Service is reachable.", hint: LibsecretStore.unavailableHint))
        }
        defer { g_object_unref(service) }
        let items = secret_service_search_sync(service, matchSchema, table, SECRET_SEARCH_ALL, nil, &error)
        if let error { return .failure(convert(error, doing: "search the keyring")) }
        var locked = 0
        var node = items
        while let current = node {
            if let item = current.pointee.data {
                if secret_item_get_locked(item.assumingMemoryBound(to: SecretItem.self)) != 0 { locked += 1 }
                g_object_unref(item)
            }
            node = current.pointee.next
        }
        g_list_free(items)
        return .success(locked)
    }

    static func lockedError(_ what: String) -> RPCError {
        RPCError(.keyringLocked, "The keyring is locked, so syncwizard cannot \(what).", hint: LibsecretStore.lockedHint)
    }

    /// GLib errors become the contract's kinds here, once.
    static func convert(_ error: UnsafeMutablePointer<GError>, doing what: String) -> RPCError {
        defer { g_error_free(error) }
        let domain = error.pointee.domain
        let code = error.pointee.code
        let detail = error.pointee.message.map { String(cString: $0) } ?? "unknown error"
        if domain == secret_error_get_quark(), code == Int32(SECRET_ERROR_IS_LOCKED.rawValue) {
            return lockedError(what)
        }
        return RPCError(.keyringUnavailable, "The keyring is not reachable, so syncwizard cannot \(what) (\(detail)).",
                        hint: LibsecretStore.unavailableHint)
    }
}
