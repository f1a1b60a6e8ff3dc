import Foundation
import RPCCore
import TestSupport
import Testing
import WizardContract

/// "Sign in with SuperOffice" through the built binary against a fake SuperID and tenant API on
/// loopback over TLS (production host names rerouted with --connect-to, a test CA); the test
/// plays the browser.
@Suite struct SuperOfficeSignInTests {
    struct Setup {
        let idp: FakeIdentityProvider
        let server: ServerProcess
        let profileId: JSONValue
    }

    static func setUp(secretStore: String = "memory", extra: [String] = [], config: JSONValue = [:]) async throws -> Setup {
        let idp = try FakeIdentityProvider(config: config)
        var arguments = ["--secret-store", secretStore, "--ca-file", idp.caFile] + extra
        for entry in idp.connectTo() { arguments += ["--connect-to", entry] }
        let server = try ServerProcess(arguments: arguments)
        _ = try await server.call(
            "setProviderSettings",
            [
                "system": "superOffice", "clientId": "syncwizard-superoffice",
                "clientSecret": "so-application-token", "environment": "online",
            ])
        let profile = try await server.call("createProfile", ["name": "SuperOffice test"])
        return Setup(idp: idp, server: server, profileId: try #require(profile["id"]))
    }

    static func start(_ s: Setup) async throws -> (signInId: JSONValue, url: String, redirectUri: String) {
        let started = try await s.server.call("startSignIn", ["profileId": s.profileId, "system": "superOffice"])
        return (
            try #require(started["signInId"]), try #require(started["authorizationUrl"]?.stringValue),
            try #require(started["redirectUri"]?.stringValue)
        )
    }

    @Test func signInTestAndRefreshEndToEnd() async throws {
        let s = try await Self.setUp()
        let (signInId, url, redirectUri) = try await Self.start(s)
        #expect(redirectUri.hasPrefix("http://127.0.0.1:"))
        #expect(url.hasPrefix("https://online.superoffice.com/login/common/oauth/authorize?"))
        for parameter in ["code_challenge_method=S256", "code_challenge=", "state=", "nonce=", "scope=openid", "client_id=syncwizard-superoffice"] {
            #expect(url.contains(parameter), "\(parameter)")
        }
        s.server.request("awaitSignIn", ["signInId": signInId, "timeoutSeconds": 30], id: "wait")

        let page = try s.idp.playBrowser(authorizationURL: url)
        #expect(page.status == 200)
        #expect(page.body.contains("You are signed in to SuperOffice"))
        #expect(page.body.contains("close this tab"))

        let completed = try #require(try await s.server.response(to: "wait")["result"])
        #expect(completed["account"]?["contextIdentifier"] == "Cust12345")
        #expect(completed["account"]?["userName"] == "admin@contoso.test")
        let notification = try await s.server.next { $0["method"] == "signInCompleted" }.0
        #expect(notification["params"]?["signInId"] == signInId)
        #expect(notification["params"]?["account"]?["webApiUrl"]?.stringValue?.contains("Cust12345") == true)

        // The PKCE verifier reached the token endpoint and matched.
        let tokenRequests = s.idp.requests(endpoint: "token")
        #expect(tokenRequests.first?["pkceOk"] == true)

        // The listener is gone: the same redirect URI no longer answers.
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(throws: (any Error).self) { try s.idp.send(url: redirectUri + "/?code=x&state=y", timeout: 3) }

        var state = try await s.server.call("getWizardState", ["profileId": s.profileId])
        #expect(state["superOffice"]?["status"] == "needsTest")

        let tested = try await s.server.call("testConnection", ["profileId": s.profileId, "system": "superOffice"])
        let result = try #require(tested["results"]?.arrayValue?.first)
        #expect(result["ok"] == true, "\(JSONWriter.string(result))")
        #expect(result["checks"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["tenantState", "currentPrincipal"])
        state = try await s.server.call("getWizardState", ["profileId": s.profileId])
        #expect(state["superOffice"]?["connected"] == true)
        #expect(!(state["blockers"]?.arrayValue ?? []).contains { $0["system"] == "superOffice" })

        // An expired access token is refreshed from the refresh token, transparently.
        try s.idp.expireAccessTokens()
        let again = try await s.server.call("testConnection", ["profileId": s.profileId, "system": "superOffice"])
        #expect(again["results"]?.arrayValue?.first?["ok"] == true)
        #expect(s.idp.requests().contains { $0["grantType"] == "refresh_token" && $0["status"] == 200 })
    }

    @Test(arguments: [
        ("access_denied", "consentDenied"), ("wrong_state", "stateMismatch"), ("tampered_signature", "invalidToken"),
        ("wrong_audience", "invalidToken"), ("expired", "invalidToken"), ("nonce_mismatch", "invalidToken"),
        ("wrong_issuer", "invalidToken"),
    ])
    func failedSignInsCarryTheirKind(_ scenario: String, _ kind: String) async throws {
        let s = try await Self.setUp()
        let (signInId, url, _) = try await Self.start(s)
        let page = try s.idp.playBrowser(authorizationURL: url, scenario: scenario)
        #expect(page.status == 400)
        #expect(page.body.contains("Sign-in failed"))
        let failed = try await s.server.next { $0["method"] == "signInFailed" }.0
        #expect(failed["params"]?["error"]?["data"]?["kind"] == .string(kind), "\(JSONWriter.string(failed))")
        let awaited = try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId])
        #expect(awaited["data"]?["kind"] == .string(kind))
        let state = try await s.server.call("getWizardState", ["profileId": s.profileId])
        #expect(state["superOffice"]?["status"] == "notConfigured")
    }

    @Test func pastedRedirectURLCompletesTheSignIn() async throws {
        let s = try await Self.setUp()
        let (signInId, url, _) = try await Self.start(s)
        let landed = try s.idp.redirectLocation(authorizationURL: url)
        let bogus = try await s.server.callExpectingError("completeSignIn", ["signInId": signInId, "redirectUrl": "https://example.com/?code=x"])
        #expect(bogus["data"]?["field"] == "redirectUrl")
        let completed = try await s.server.call("completeSignIn", ["signInId": signInId, "redirectUrl": .string(landed)])
        #expect(completed["account"]?["contextIdentifier"] == "Cust12345")
        // The answer is final: awaiting again gives the same account.
        #expect(try await s.server.call("awaitSignIn", ["signInId": signInId])["account"] == completed["account"])
    }

    @Test func cancelClosesTheListener() async throws {
        let s = try await Self.setUp()
        let (signInId, _, redirectUri) = try await Self.start(s)
        #expect(try await s.server.call("cancelSignIn", ["signInId": signInId]) == ["cancelled": true])
        #expect(try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId])["data"]?["kind"] == "signInCancelled")
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(throws: (any Error).self) { try s.idp.send(url: redirectUri + "/?code=x&state=y", timeout: 3) }
        #expect(try await s.server.callExpectingError("awaitSignIn", ["signInId": "nope"])["data"]?["kind"] == "signInNotFound")
    }

    @Test func unfinishedSignInTimesOut() async throws {
        let s = try await Self.setUp(extra: ["--sign-in-timeout", "2"])
        let (signInId, _, _) = try await Self.start(s)
        let error = try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId], timeout: 15)
        #expect(error["data"]?["kind"] == "signInTimedOut")
        let failed = try await s.server.next { $0["method"] == "signInFailed" }.0
        #expect(failed["params"]?["error"]?["data"]?["kind"] == "signInTimedOut")
    }

    @Test func wrongStateOnTheListenerIsRejected() async throws {
        let s = try await Self.setUp()
        let (signInId, _, redirectUri) = try await Self.start(s)
        // A page probing the port does not end the wait; a forged answer does, as stateMismatch.
        let probe = try s.idp.send(url: redirectUri + "/favicon.ico")
        #expect(probe.status == 404)
        let forged = try s.idp.send(url: redirectUri + "/?code=stolen&state=forged")
        #expect(forged.status == 400)
        #expect(try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId])["data"]?["kind"] == "stateMismatch")
        #expect(s.idp.requests(endpoint: "token").isEmpty, "a forged code must never reach the token endpoint")
    }

    @Test func suspendedTenantIsReported() async throws {
        let s = try await Self.setUp()
        let (_, url, _) = try await Self.start(s)
        _ = try s.idp.playBrowser(authorizationURL: url)
        _ = try await s.server.next { $0["method"] == "signInCompleted" }
        try s.idp.setScenario("suspended")
        let tested = try await s.server.call("testConnection", ["profileId": s.profileId, "system": "superOffice"])
        let result = try #require(tested["results"]?.arrayValue?.first)
        #expect(result["ok"] == false)
        #expect(result["error"]?["data"]?["kind"] == "tenantNotRunning")
        #expect(result["error"]?["data"]?["state"] == "Suspended")
        #expect(try await s.server.call("getWizardState", ["profileId": s.profileId])["superOffice"]?["status"] == "testFailed")
    }

    @Test func refreshFailureAsksToSignInAgain() async throws {
        let s = try await Self.setUp()
        let (_, url, _) = try await Self.start(s)
        _ = try s.idp.playBrowser(authorizationURL: url)
        _ = try await s.server.next { $0["method"] == "signInCompleted" }
        try s.idp.expireAccessTokens()
        try s.idp.setScenario("refresh_fails")
        let tested = try await s.server.call("testConnection", ["profileId": s.profileId, "system": "superOffice"])
        #expect(tested["results"]?.arrayValue?.first?["error"]?["data"]?["kind"] == "reauthenticationRequired")
    }

    @Test func missingClientIdIsProviderNotConfigured() async throws {
        let server = try ServerProcess()
        let id = try #require(try await server.call("createProfile", ["name": "x"])["id"])
        let error = try await server.callExpectingError("startSignIn", ["profileId": id, "system": "superOffice"])
        #expect(error["data"]?["kind"] == "providerNotConfigured")
        let device = try await server.callExpectingError("startSignIn", ["profileId": id, "system": "google", "flow": "deviceCode"])
        #expect(device["data"]?["field"] == "flow")
    }
}

/// With the real keyring: where the refresh token lives, rotation, and that no secret leaks.
@Suite(.enabled(if: TestPaths.hasTestKeyring, "needs scripts/with-test-keyring.sh"))
struct SuperOfficeKeyringTests {
    @Test func refreshTokenIsKeptRotatedAndNeverLeaks() async throws {
        let trace = TestPaths.makeTemporaryDirectory("so-trace") + "/trace.log"
        let s = try await SuperOfficeSignInTests.setUp(secretStore: "keyring", extra: ["--trace-file", trace, "--log-level", "trace"])
        let (signInId, url, _) = try await SuperOfficeSignInTests.start(s)
        let landed = try s.idp.redirectLocation(authorizationURL: url)
        _ = try await s.server.call("completeSignIn", ["signInId": signInId, "redirectUrl": .string(landed)])
        let id = try #require(s.profileId.stringValue)
        let first = try #require(try SecretTool.lookup(["profile": id, "system": "superOffice", "kind": "refreshToken"]))
        try s.idp.expireAccessTokens()
        _ = try await s.server.call("testConnection", ["profileId": s.profileId, "system": "superOffice"])
        let rotated = try #require(try SecretTool.lookup(["profile": id, "system": "superOffice", "kind": "refreshToken"]))
        #expect(rotated != first, "the rotated refresh token must replace the spent one")
        #expect(try await s.server.call("signOut", ["profileId": s.profileId, "system": "superOffice"]) == ["signedOut": true])
        #expect(try SecretTool.lookup(["profile": id, "system": "superOffice", "kind": "refreshToken"]) == nil)

        s.server.closeInput()
        _ = try await s.server.waitForExit()
        let secrets = try s.idp.issuedSecrets() + [first, rotated]
        let stdout = String(decoding: s.server.stdoutBytes, as: UTF8.self)
        let traceText = (try? String(contentsOfFile: trace, encoding: .utf8)) ?? ""
        var files = ""
        for file in (try? FileManager.default.subpathsOfDirectory(atPath: s.server.configDirectory)) ?? [] {
            if let data = FileManager.default.contents(atPath: s.server.configDirectory + "/" + file) { files += String(decoding: data, as: UTF8.self) }
        }
        for secret in secrets where secret.count >= 8 {
            #expect(!stdout.contains(secret), "stdout leaks a secret")
            #expect(!s.server.stderrText.contains(secret), "stderr leaks a secret")
            #expect(!traceText.contains(secret), "the trace leaks a secret")
            #expect(!files.contains(secret), "a profile file leaks a secret")
        }
        #expect(traceText.contains("completeSignIn"))
    }
}
