import Foundation
import RPCCore
import TestSupport
import Testing
import WizardContract

@testable import Wizard

@Suite struct ProfileStoreTests {
    let directory = TestPaths.makeTemporaryDirectory("profile-store")

    @Test func createListGetUpdateDelete() async throws {
        let store = ProfileStore(directory: directory)
        let a = try await store.create(name: "Sales")
        let b = try await store.create(name: "Support")
        #expect(try await store.list().map(\.name) == ["Sales", "Support"])
        #expect(try await store.get(a.id) == a)
        let updated = try await store.update(b.id) { $0.calendarSystem = .exchange }
        #expect(updated.calendarSystem == .exchange)
        #expect(try await store.get(b.id).calendarSystem == .exchange)
        try await store.delete(a.id)
        await #expect(throws: RPCError.profileNotFound(a.id)) { try await store.get(a.id) }
        await #expect(throws: RPCError.self) { try await store.delete(a.id) }
    }

    @Test func filesAreJSONWithoutSecretsAndPrivate() async throws {
        let store = ProfileStore(directory: directory)
        let p = try await store.create(name: "Sales")
        let path = store.profilePath(p.id)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let json = try JSONParser.parse(Array(FileManager.default.contents(atPath: path)!))
        #expect(json["formatVersion"] == 1)
        #expect(json["id"] == .string(p.id))
    }

    @Test func concurrentUpdatesOfOneProfileLoseNothing() async throws {
        let store = ProfileStore(directory: directory)
        let p = try await store.create(name: "Busy")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<100 {
                group.addTask { try await store.update(p.id) { $0.superOffice.settings["k\(i)"] = .int(i) } }
            }
            try await group.waitForAll()
        }
        #expect(try await store.get(p.id).superOffice.settings.count == 100)
    }

    @Test func damagedFileIsReportedAndDoesNotHideTheOthers() async throws {
        let store = ProfileStore(directory: directory)
        let good = try await store.create(name: "Good")
        let bad = try await store.create(name: "Bad")
        try Data("{\"id\":".utf8).write(to: URL(fileURLWithPath: store.profilePath(bad.id)))
        #expect(try await store.list().map(\.id) == [good.id])
        let error = await #expect(throws: RPCError.self) { try await store.get(bad.id) }
        #expect(error?.kind == .storageFailed)
    }

    @Test func aCancelledChangeWaitingForTheLockNeverWrites() async throws {
        let store = ProfileStore(directory: directory)
        let p = try await store.create(name: "Locked")
        // Another process holds the directory lock (long enough for a slow machine; ended below).
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["--no-fork", directory + "/.lock", "sleep", "60"] // no fork: terminating it frees the lock
        try holder.run()
        // SIGKILL: the child may inherit a blocked SIGTERM from the test process.
        defer { kill(holder.processIdentifier, SIGKILL) }
        try await ProfileStoreLock.waitUntilLocked(directory + "/.lock")
        let change = Task { try await store.update(p.id) { $0.name = "Changed" } }
        try await Task.sleep(nanoseconds: 100_000_000)
        change.cancel()
        await #expect(throws: RPCError.cancelled) { try await change.value }
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        #expect(try await store.get(p.id).name == "Locked")
    }

    @Test func providerSettingsKeepOtherSystems() async throws {
        let store = ProfileStore(directory: directory)
        try await store.updateProviderSettings { $0.append(ProviderSettings(system: .google, clientId: "g")) }
        try await store.updateProviderSettings { $0.append(ProviderSettings(system: .superOffice, clientId: "s", environment: .sod)) }
        let all = try await store.providerSettings()
        #expect(all.map(\.system) == [.google, .superOffice])
        #expect(all.last?.environment == .sod)
    }
}
