import Foundation
import TestSupport
import Testing
import WizardProtocol

/// "Sign in with Microsoft" and "Sign in with Google" through the built binary against fake
/// Microsoft identity/Graph and Google endpoints on loopback over TLS (production host names via
/// --connect-to, a test CA); the test plays the browser.
@Suite struct CalendarSignInTests {
    struct Setup {
        let idp: FakeIdentityProvider
        let server: ServerProcess
        let profileId: JSONValue
    }

    static let clients: JSONValue = ["syncwizard-superoffice": "so-application-token", "syncwizard-microsoft": nil,
                                     "syncwizard-google": "google-desktop-client-secret", "contoso-sync": "contoso-app-secret"]

    static func setUp(system: String, secretStore: String = "memory", microsoftClient: String = "syncwizard-microsoft",
                      microsoftSecret: String? = nil, tenant: String? = nil) async throws -> Setup {
        let idp = try FakeIdentityProvider(config: ["clients": clients])
        var arguments = ["--secret-store", secretStore, "--ca-file", idp.caFile]
        for entry in idp.connectTo() { arguments += ["--connect-to", entry] }
        let server = try ServerProcess(arguments: arguments)
        var microsoft: JSONObject = ["system": "microsoft365", "clientId": .string(microsoftClient)]
        if let microsoftSecret { microsoft["clientSecret"] = .string(microsoftSecret) }
        if let tenant { microsoft["tenant"] = .string(tenant) }
        _ = try await server.call("setProviderSettings", .object(microsoft))
        _ = try await server.call("setProviderSettings", ["system": "google", "clientId": "syncwizard-google", "clientSecret": "google-desktop-client-secret"])
        let id = try #require(try await server.call("createProfile", ["name": "Calendar"])["id"])
        _ = try await server.call("selectCalendarSystem", ["profileId": id, "system": .string(system)])
        return Setup(idp: idp, server: server, profileId: id)
    }

    static func signIn(_ s: Setup, system: String, scenario: String? = nil, extra: JSONObject = [:]) async throws -> (signInId: JSONValue, page: (status: Int, body: String, landedOn: String)) {
        var params: JSONObject = ["profileId": s.profileId, "system": .string(system)]
        for m in extra.members { params[m.key] = m.value }
        let started = try await s.server.call("startSignIn", .object(params))
        let url = try #require(started["authorizationUrl"]?.stringValue)
        return (try #require(started["signInId"]), try s.idp.playBrowser(authorizationURL: url, scenario: scenario))
    }

    static func calendarResult(_ s: Setup) async throws -> JSONValue {
        let tested = try await s.server.call("testConnection", ["profileId": s.profileId, "system": "calendar"], timeout: 30)
        return try #require(tested["results"]?.arrayValue?.first)
    }

    // MARK: Microsoft 365

    @Test func microsoftSignInAndGraphTests() async throws {
        let s = try await Self.setUp(system: "microsoft365")
        let started = try await s.server.call("startSignIn", ["profileId": s.profileId, "system": "microsoft365"])
        let url = try #require(started["authorizationUrl"]?.stringValue)
        #expect(url.hasPrefix("https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize?"))
        #expect(url.contains("prompt=consent") && url.contains("offline_access") && url.contains("code_challenge_method=S256"))
        #expect(started["redirectUri"]?.stringValue?.hasPrefix("http://localhost:") == true)
        let page = try s.idp.playBrowser(authorizationURL: url)
        #expect(page.status == 200, "\(page.body)")
        let done = try await s.server.call("awaitSignIn", ["signInId": try #require(started["signInId"])])
        #expect(done["account"]?["userPrincipalName"] == "admin@contoso.test")
        #expect(done["account"]?["tenantId"]?.stringValue?.count == 36)
        let result = try await Self.calendarResult(s)
        #expect(result["ok"] == true, "\(JSONWriter.string(result))")
        #expect(result["checks"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["graphDirectory", "graphCalendar", "organizationConsent"])
        #expect(try await s.server.call("getWizardState", ["profileId": s.profileId])["calendar"]?["connected"] == true)
        // Expired access token: refreshed transparently.
        try s.idp.expireAccessTokens()
        #expect(try await Self.calendarResult(s)["ok"] == true)
    }

    @Test(arguments: [("admin_consent_required", 90094), ("user_consent_blocked", 90093), ("admin_consent_workflow", 90095),
                      ("risky_app", 900941), ("consent_missing_at_token", 65001)])
    func needAdminApprovalIsExplained(_ scenario: String, _ code: Int) async throws {
        let s = try await Self.setUp(system: "microsoft365")
        let (signInId, _) = try await Self.signIn(s, system: "microsoft365", scenario: scenario)
        let error = try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId])
        #expect(error["data"]?["kind"] == "adminApprovalRequired", "\(JSONWriter.string(error))")
        #expect(error["data"]?["aadsts"] == .int(code))
        let hint = error["data"]?["hint"]?.stringValue ?? ""
        #expect(hint.contains("Global Administrator") && hint.contains("Consent on behalf of your organization"))
    }

    @Test(arguments: [("consent_declined", "consentDenied"), ("access_denied", "consentDenied"), ("mfa_required", "mfaRequired"),
                      ("conditional_access", "conditionalAccessBlocked"), ("tampered_signature", "invalidToken"), ("wrong_issuer", "invalidToken")])
    func microsoftErrorsHaveTheirKinds(_ scenario: String, _ kind: String) async throws {
        let s = try await Self.setUp(system: "microsoft365")
        let (signInId, _) = try await Self.signIn(s, system: "microsoft365", scenario: scenario)
        let error = try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId])
        #expect(error["data"]?["kind"] == .string(kind), "\(JSONWriter.string(error))")
    }

    @Test(arguments: [("consent_principal_only", "organizationConsentMissing"), ("consent_missing", "organizationConsentMissing"),
                      ("graph_forbidden", "insufficientPrivileges")])
    func adminOnlyConsentAndMissingRightsAreCaught(_ scenario: String, _ kind: String) async throws {
        let s = try await Self.setUp(system: "microsoft365")
        let (signInId, _) = try await Self.signIn(s, system: "microsoft365")
        _ = try await s.server.call("awaitSignIn", ["signInId": signInId])
        try s.idp.setScenario(scenario)
        let result = try await Self.calendarResult(s)
        #expect(result["ok"] == false)
        #expect(result["error"]?["data"]?["kind"] == .string(kind), "\(JSONWriter.string(result))")
        if kind == "organizationConsentMissing" {
            #expect(result["error"]?["data"]?["hint"]?.stringValue?.contains("Consent on behalf of your organization") == true)
        }
    }

    @Test func deviceCodeFlowPollsUntilTheUserIsDone() async throws {
        let s = try await Self.setUp(system: "microsoft365")
        try s.idp.setScenario("device_slow_down")
        let started = try await s.server.call("startSignIn", ["profileId": s.profileId, "system": "microsoft365", "flow": "deviceCode"])
        #expect(started["flow"] == "deviceCode")
        #expect(started["userCode"]?.stringValue?.isEmpty == false)
        #expect(started["verificationUri"]?.stringValue?.hasPrefix("https://") == true)
        #expect(started["authorizationUrl"] == nil)
        let done = try await s.server.call("awaitSignIn", ["signInId": try #require(started["signInId"]), "timeoutSeconds": 60], timeout: 70)
        #expect(done["account"]?["userPrincipalName"] == "admin@contoso.test")
        #expect(s.idp.requests(endpoint: "token").contains { $0["error"] == "slow_down" })
    }

    @Test(arguments: [("device_declined", "consentDenied"), ("device_expired", "signInTimedOut")])
    func deviceCodeEndings(_ scenario: String, _ kind: String) async throws {
        let s = try await Self.setUp(system: "microsoft365")
        try s.idp.setScenario(scenario)
        let started = try await s.server.call("startSignIn", ["profileId": s.profileId, "system": "microsoft365", "flow": "deviceCode"])
        let error = try await s.server.callExpectingError("awaitSignIn", ["signInId": try #require(started["signInId"]), "timeoutSeconds": 60], timeout: 70)
        #expect(error["data"]?["kind"] == .string(kind), "\(JSONWriter.string(error))")
    }

    @Test func tenantWideAdminConsentIsProvedWithAClientCredentialsToken() async throws {
        let s = try await Self.setUp(system: "microsoft365", microsoftClient: "contoso-sync", microsoftSecret: "contoso-app-secret")
        let (signInId, page) = try await Self.signIn(s, system: "microsoft365", extra: ["adminConsent": true])
        #expect(page.status == 200, "\(page.body)")
        let done = try await s.server.call("awaitSignIn", ["signInId": signInId])
        #expect(done["account"]?["adminConsent"] == true)
        #expect(s.idp.requests(endpoint: "token").contains { $0["grantType"] == "client_credentials" && $0["status"] == 200 })
        let profile = try await s.server.call("getProfile", ["profileId": s.profileId])
        #expect(profile["calendar"]?["microsoft365"]?["settings"]?["adminConsentGranted"] == true)
        // Without the app's secret there is nothing to prove it with.
        let t = try await Self.setUp(system: "microsoft365")
        let error = try await t.server.callExpectingError("startSignIn", ["profileId": t.profileId, "system": "microsoft365", "adminConsent": true])
        #expect(error["data"]?["kind"] == "providerNotConfigured")
    }

    // MARK: Google

    @Test func googleSignInDirectoryAndCalendar() async throws {
        let s = try await Self.setUp(system: "google")
        let started = try await s.server.call("startSignIn", ["profileId": s.profileId, "system": "google", "loginHint": "admin@contoso.test"])
        let url = try #require(started["authorizationUrl"]?.stringValue)
        #expect(url.hasPrefix("https://accounts.google.com/o/oauth2/v2/auth?"))
        for p in ["access_type=offline", "prompt=consent", "hd=contoso.test", "admin.directory.user.readonly", "auth%2Fcalendar"] {
            #expect(url.contains(p), "\(p)")
        }
        #expect(started["redirectUri"]?.stringValue?.hasPrefix("http://127.0.0.1:") == true)
        _ = try s.idp.playBrowser(authorizationURL: url)
        let done = try await s.server.call("awaitSignIn", ["signInId": try #require(started["signInId"])])
        #expect(done["account"]?["email"] == "admin@contoso.test")
        #expect(done["account"]?["domain"] == "contoso.test")
        let result = try await Self.calendarResult(s)
        #expect(result["ok"] == true, "\(JSONWriter.string(result))")
        #expect(result["checks"]?.arrayValue?.first?["message"]?.stringValue?.contains("3 user") == true)
    }

    @Test(arguments: [("admin_policy_enforced", "appNotTrusted"), ("access_denied", "consentDenied"), ("scopes_partial", "scopesNotGranted"),
                      ("nonce_mismatch", "invalidToken")])
    func googleErrorsHaveTheirKinds(_ scenario: String, _ kind: String) async throws {
        let s = try await Self.setUp(system: "google")
        let (signInId, _) = try await Self.signIn(s, system: "google", scenario: scenario)
        let error = try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId])
        #expect(error["data"]?["kind"] == .string(kind), "\(JSONWriter.string(error))")
        if kind == "appNotTrusted" {
            #expect(error["data"]?["hint"]?.stringValue?.contains("Manage Third-Party App Access") == true)
        }
        if kind == "scopesNotGranted" {
            #expect(error["data"]?["missingScopes"]?.arrayValue?.contains("https://www.googleapis.com/auth/admin.directory.user.readonly") == true)
            #expect(error["data"]?["hint"]?.stringValue?.contains("Select all") == true)
        }
    }

    @Test func nonAdministratorCannotReadTheDirectory() async throws {
        let s = try await Self.setUp(system: "google")
        let (signInId, _) = try await Self.signIn(s, system: "google")
        _ = try await s.server.call("awaitSignIn", ["signInId": signInId])
        try s.idp.setScenario("directory_forbidden")
        let result = try await Self.calendarResult(s)
        #expect(result["error"]?["data"]?["kind"] == "insufficientPrivileges")
    }

    @Test func switchingSystemsKeepsTheOtherSignInAndBothSidesUnblock() async throws {
        let s = try await Self.setUp(system: "google")
        let (google, _) = try await Self.signIn(s, system: "google")
        _ = try await s.server.call("awaitSignIn", ["signInId": google])
        _ = try await s.server.call("selectCalendarSystem", ["profileId": s.profileId, "system": "microsoft365"])
        let (microsoft, _) = try await Self.signIn(s, system: "microsoft365")
        _ = try await s.server.call("awaitSignIn", ["signInId": microsoft])
        let profile = try await s.server.call("getProfile", ["profileId": s.profileId])
        #expect(profile["calendar"]?["google"]?["hasRefreshToken"] == true)
        #expect(profile["calendar"]?["microsoft365"]?["hasRefreshToken"] == true)
        // SuperOffice too, then everything is connected and tested: the wizard may continue.
        _ = try await s.server.call("setProviderSettings", ["system": "superOffice", "clientId": "syncwizard-superoffice", "clientSecret": "so-application-token"])
        let (so, _) = try await Self.signIn(s, system: "superOffice")
        _ = try await s.server.call("awaitSignIn", ["signInId": so])
        #expect(try await s.server.callExpectingError("nextStep", ["profileId": s.profileId])["data"]?["kind"] == "stepIncomplete")
        let all = try await s.server.call("testConnection", ["profileId": s.profileId], timeout: 30)
        #expect(all["results"]?.arrayValue?.allSatisfy { $0["ok"] == true } == true, "\(JSONWriter.string(all))")
        #expect(try await s.server.call("nextStep", ["profileId": s.profileId]) == ["step": "selectUsers"])
    }
}
