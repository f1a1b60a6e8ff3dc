import RPCCore
import Threading
import WizardContract

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Profiles and provider settings as JSON files under one directory:
///
///     <dir>/profiles/<id>.json   one file per profile
///     <dir>/providers.json       client ids and options (never a secret)
///     <dir>/.lock                flock(2) target
///
/// Every change is read-modify-write under an exclusive flock on `.lock`, so two syncwizard
/// processes on one directory never lose an update, and every file is replaced atomically
/// (temp file, fsync, rename, fsync of the directory), so a crash at any point leaves either
/// the old or the new file, never a torn one. Blocking file calls run on a dedicated thread.
public final class ProfileStore: Sendable {
    public let directory: String
    private let worker = SerialWorker(name: "syncwizard-store")

    public init(directory: String) {
        self.directory = directory
    }

    var profilesDirectory: String { directory + "/profiles" }
    func profilePath(_ id: String) -> String { profilesDirectory + "/" + id + ".json" }
    var providersPath: String { directory + "/providers.json" }

    /// How long a change waits for another process holding the directory lock.
    static let lockTimeoutSeconds = 30.0

    /// Runs `body` on the store thread holding the directory lock. A cancelled request never
    /// writes: the flag is checked while waiting for the lock and again once it is held.
    func locked<T: Sendable>(exclusive: Bool, _ body: @escaping @Sendable () throws(RPCError) -> T) async throws(RPCError) -> T {
        let directory = self.directory
        let cancelled = MutexBox(false)
        let outcome: Result<T, RPCError>? = await withTaskCancellationHandler {
            await worker.run {
                do throws(RPCError) {
                    try FileOps.makeDirectory(directory)
                    try FileOps.makeDirectory(directory + "/profiles")
                    let lock = try FileOps.lock(
                        directory + "/.lock", exclusive: exclusive,
                        timeoutSeconds: Self.lockTimeoutSeconds,
                        isCancelled: { cancelled.withLock { $0 } })
                    defer { FileOps.unlock(lock) }
                    if cancelled.withLock({ $0 }) { return .failure(.cancelled) }
                    return .success(try body())
                } catch {
                    return .failure(error)
                }
            }
        } onCancel: {
            cancelled.withLock { $0 = true }
        }
        switch outcome {
        case .success(let value)?: return value
        case .failure(let error)?: throw error
        case nil: throw RPCError(.storageFailed, "The profile store did not answer.")
        }
    }

    // MARK: - Profiles

    public func create(name: String) async throws(RPCError) -> Profile {
        let profile = Profile(id: IDGenerator.uuid(), name: name, createdAt: Clock.nowISO8601())
        let path = profilePath(profile.id)
        try await locked(exclusive: true) { () throws(RPCError) in
            try FileOps.writeAtomically(path, JSONWriter.bytes(profile.storedJSON))
        }
        return profile
    }

    public func list() async throws(RPCError) -> [Profile] {
        let directory = profilesDirectory
        return try await locked(exclusive: false) { () throws(RPCError) -> [Profile] in
            var profiles: [Profile] = []
            for file in try FileOps.listDirectory(directory) where file.hasSuffix(".json") && !file.hasPrefix(".") {
                let id = String(file.dropLast(5))
                guard ProfileID.isWellFormed(id) else { continue }
                // One damaged file must not hide the others; getProfile reports it.
                if let profile = try? Self.read(directory + "/" + file, id: id) { profiles.append(profile) }
            }
            return profiles.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        }
    }

    public func get(_ id: String) async throws(RPCError) -> Profile {
        let path = profilePath(id)
        return try await locked(exclusive: false) { () throws(RPCError) -> Profile in
            try Self.read(path, id: id)
        }
    }

    /// Read, change and write one profile under the exclusive lock.
    @discardableResult
    public func update(_ id: String, _ change: @escaping @Sendable (inout Profile) throws(RPCError) -> Void) async throws(RPCError) -> Profile {
        let path = profilePath(id)
        return try await locked(exclusive: true) { () throws(RPCError) -> Profile in
            var profile = try Self.read(path, id: id)
            try change(&profile)
            profile.updatedAt = Clock.nowISO8601()
            try FileOps.writeAtomically(path, JSONWriter.bytes(profile.storedJSON))
            return profile
        }
    }

    public func delete(_ id: String) async throws(RPCError) {
        let path = profilePath(id)
        let directory = profilesDirectory
        try await locked(exclusive: true) { () throws(RPCError) in
            guard FileOps.exists(path) else { throw RPCError.profileNotFound(id) }
            try FileOps.remove(path)
            FileOps.syncDirectory(directory)
        }
    }

    static func read(_ path: String, id: String) throws(RPCError) -> Profile {
        guard let bytes = try FileOps.readFile(path) else { throw RPCError.profileNotFound(id) }
        guard let json = try? JSONParser.parse(bytes), let profile = Profile(json: json), profile.id == id else {
            throw RPCError(
                .storageFailed, "The file of profile \(id) is damaged and cannot be read.",
                hint: "Restore \(path) from a backup, or delete the profile and create it again.")
        }
        return profile
    }

    // MARK: - Provider settings

    public func providerSettings() async throws(RPCError) -> [ProviderSettings] {
        let path = providersPath
        return try await locked(exclusive: false) { () throws(RPCError) -> [ProviderSettings] in
            try Self.readProviders(path)
        }
    }

    @discardableResult
    public func updateProviderSettings(_ change: @escaping @Sendable (inout [ProviderSettings]) throws(RPCError) -> Void) async throws(RPCError)
        -> [ProviderSettings]
    {
        let path = providersPath
        return try await locked(exclusive: true) { () throws(RPCError) -> [ProviderSettings] in
            var settings = try Self.readProviders(path)
            try change(&settings)
            let json = JSONValue.object(
                JSONObject([
                    ("formatVersion", .int(1)),
                    ("providers", .array(settings.map(\.json))),
                ]))
            try FileOps.writeAtomically(path, JSONWriter.bytes(json))
            return settings
        }
    }

    static func readProviders(_ path: String) throws(RPCError) -> [ProviderSettings] {
        guard let bytes = try FileOps.readFile(path) else { return [] }
        guard let json = try? JSONParser.parse(bytes), let list = json["providers"]?.arrayValue else {
            throw RPCError(
                .storageFailed, "The provider settings file is damaged and cannot be read.",
                hint: "Remove \(path) and set the provider settings again.")
        }
        return list.compactMap(ProviderSettings.init(json:))
    }
}
