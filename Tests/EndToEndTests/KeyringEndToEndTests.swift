import Foundation
import RPCCore
import TestSupport
import Testing
import WizardContract

/// The binary against a real gnome-keyring (scripts/with-test-keyring.sh).
@Suite(.enabled(if: TestPaths.hasTestKeyring, "needs scripts/with-test-keyring.sh"))
struct KeyringEndToEndTests {
    @Test func clientSecretLivesOnlyInTheKeyringAndNeverLeaks() async throws {
        let canary = "canary-\(UUID().uuidString)"
        let trace = TestPaths.makeTemporaryDirectory("trace") + "/trace.log"
        let server = try ServerProcess(arguments: ["--secret-store", "keyring", "--log-level", "trace", "--trace-file", trace])
        let settings = try await server.call(
            "setProviderSettings", ["system": "microsoft365", "clientId": "app-id", "clientSecret": .string(canary), "tenant": "contoso.onmicrosoft.com"])
        #expect(settings["hasClientSecret"] == true)
        #expect(settings["tenant"] == "contoso.onmicrosoft.com")
        #expect(try SecretTool.lookup(["profile": "microsoft365", "system": "provider", "kind": "clientSecret"]) == canary)

        // Keeping the secret when it is not given; removing it with "".
        #expect(try await server.call("setProviderSettings", ["system": "microsoft365", "clientId": "app-id-2"])["hasClientSecret"] == true)
        _ = try await server.call("createProfile", ["name": "P"])
        server.request("setProviderSettings", ["system": "google", "clientId": "g", "clientSecret": .string(canary), "bogus": .string(canary)], id: "bad")
        _ = try await server.response(to: "bad")
        server.closeInput()
        #expect(try await server.waitForExit() == 0)

        let stdout = String(decoding: server.stdoutBytes, as: UTF8.self)
        #expect(!stdout.contains(canary), "stdout")
        #expect(!server.stderrText.contains(canary), "stderr")
        let traceText = try String(contentsOfFile: trace, encoding: .utf8)
        #expect(traceText.contains("setProviderSettings"))
        #expect(!traceText.contains(canary), "trace file")
        for file in try FileManager.default.subpathsOfDirectory(atPath: server.configDirectory) {
            let path = server.configDirectory + "/" + file
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else { continue }
            #expect(!String(decoding: data, as: UTF8.self).contains(canary), "\(file)")
        }
        _ = try SecretTool.run(["clear", "profile", "microsoft365", "system", "provider", "kind", "clientSecret"])
    }

    @Test func deleteProfileRemovesEverySecretOfTheProfile() async throws {
        let server = try ServerProcess(arguments: ["--secret-store", "keyring"])
        let id = try #require(try await server.call("createProfile", ["name": "Doomed"])["id"]?.stringValue)
        // Secrets as the connectors file them, under the contract's attributes.
        try SecretTool.store("pw", label: "t", ["profile": id, "system": "exchange", "kind": "password"])
        try SecretTool.store("rt", label: "t", ["profile": id, "system": "superOffice", "kind": "refreshToken"])
        #expect(try await server.call("deleteProfile", ["profileId": .string(id)]) == ["deleted": true])
        #expect(try SecretTool.lookup(["profile": id, "system": "exchange", "kind": "password"]) == nil)
        #expect(try SecretTool.lookup(["profile": id, "system": "superOffice", "kind": "refreshToken"]) == nil)
    }

    @Test func noSecretServiceGivesKeyringUnavailableQuicklyAndServingContinues() async throws {
        let server = try ServerProcess(
            arguments: ["--secret-store", "keyring"],
            environment: ["DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"])
        let started = Date()
        let error = try await server.callExpectingError("setProviderSettings", ["system": "google", "clientId": "g", "clientSecret": "s3cret-value"])
        #expect(error["data"]?["kind"] == "keyringUnavailable")
        #expect(error["data"]?["hint"]?.stringValue?.contains("--secret-store memory") == true)
        #expect(Date().timeIntervalSince(started) < 20) // not a hang (D-Bus would wait 25 s); milliseconds when idle
        #expect(!JSONWriter.string(error).contains("s3cret-value"))
        #expect(try await server.call("ping") == [:])
        // Nothing was half-written: the provider settings were not saved without their secret.
        #expect(try await server.call("getProviderSettings")["providers"] == [])
    }

    @Test func lockedKeyringIsReportedNotTreatedAsMissing() async throws {
        // A fresh keyring session of its own, locked before syncwizard starts (a locked
        // collection cannot be unlocked again headless).
        let script = """
            secret-tool store --label=t profile 3f2b0c1e-1111-4222-8333-444455556666 system exchange kind password <<< pw
            dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
              org.freedesktop.Secret.Service.Lock array:objpath:/org/freedesktop/secrets/collection/login >/dev/null
            exec "$0" --secret-store keyring
            """
        let server = try ServerProcess(
            arguments: ["bash", "-c", script, TestPaths.binary],
            executable: TestPaths.repositoryRoot.appendingPathComponent("scripts/with-test-keyring.sh").path)
        let stored = try await server.callExpectingError("setProviderSettings", ["system": "google", "clientId": "g", "clientSecret": "x-secret"])
        #expect(stored["data"]?["kind"] == "keyringLocked")
        // Locked items survive a clear silently in libsecret: syncwizard must say so.
        _ = try await server.call("createProfile", ["name": "P"])
        let dir = server.configDirectory + "/profiles"
        let fixed = "3f2b0c1e-1111-4222-8333-444455556666"
        let json = #"{"id":"\#(fixed)","name":"Seeded","createdAt":"2026-01-01T00:00:00.000Z","calendar":{"system":null},"formatVersion":1}"#
        try json.write(toFile: dir + "/\(fixed).json", atomically: true, encoding: .utf8)
        let deleted = try await server.callExpectingError("deleteProfile", ["profileId": .string(fixed)])
        #expect(deleted["data"]?["kind"] == "keyringLocked")
        #expect(FileManager.default.fileExists(atPath: dir + "/\(fixed).json"), "the profile must stay while its secrets cannot be removed")
    }
}
