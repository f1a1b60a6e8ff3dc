import Foundation
import RPCCore
import TestSupport
import Testing
import WizardContract

/// "Sign in with Microsoft" and "Sign in with Google" through the built binary against fake
/// Microsoft identity/Graph and Google endpoints on loopback over TLS (production host names via
/// --connect-to, a test CA); the test plays the browser.
@Suite struct CalendarSignInTests {
    struct Setup {
        let idp: FakeIdentityProvider
        let server: ServerProcess
        let profileId: JSONValue
    }

    static let clients: JSONValue = [
        "syncwizard-superoffice": "so-application-token", "syncwizard-microsoft": nil,
        "syncwizard-google": "google-desktop-client-secret", "contoso-sync": "contoso-app-secret",
    ]

    static func setUp(
        system: String, secretStore: String = "memory", microsoftClient: String = "syncwizard-microsoft",
        microsoftSecret: String? = nil, tenant: String? = nil, microsoftConfig: JSONObject = [:]
    ) async throws -> Setup {
        var config: JSONObject = ["clients": clients]
        if !microsoftConfig.members.isEmpty { config["microsoft"] = .object(microsoftConfig) }
        let idp = try FakeIdentityProvider(config: .object(config))
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

    static func signIn(_ s: Setup, system: String, scenario: String? = nil, extra: JSONObject = [:]) async throws -> (
        signInId: JSONValue, page: (status: Int, body: String, landedOn: String)
    ) {
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

    /// Issue 16: the key set is fetched while the browser is out (it also opens the token
    /// endpoint's connection, same host), once per process; the EWS URL lookup comes after.
    @Test func microsoftKeySetIsFetchedWhileTheBrowserIsOut() async throws {
        let s = try await Self.setUp(system: "microsoft365")
        let started = try await s.server.call("startSignIn", ["profileId": s.profileId, "system": "microsoft365"])
        let deadline = Date().addingTimeInterval(10)
        while s.idp.requests(endpoint: "jwks").isEmpty, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(s.idp.requests(endpoint: "jwks").count == 1, "fetched before the browser got anywhere")
        #expect(s.idp.requests(endpoint: "token").isEmpty)
        let page = try s.idp.playBrowser(authorizationURL: try #require(started["authorizationUrl"]?.stringValue))
        #expect(page.status == 200, "\(page.body)")
        _ = try await s.server.call("awaitSignIn", ["signInId": try #require(started["signInId"])])
        #expect(s.idp.requests(endpoint: "jwks").count == 1, "not again after the callback")
    }

    @Test(arguments: [
        ("admin_consent_required", 90094), ("user_consent_blocked", 90093), ("admin_consent_workflow", 90095),
        ("risky_app", 900941), ("consent_missing_at_token", 65001),
    ])
    func needAdminApprovalIsExplained(_ scenario: String, _ code: Int) async throws {
        let s = try await Self.setUp(system: "microsoft365")
        let (signInId, _) = try await Self.signIn(s, system: "microsoft365", scenario: scenario)
        let error = try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId])
        #expect(error["data"]?["kind"] == "adminApprovalRequired", "\(JSONWriter.string(error))")
        #expect(error["data"]?["aadsts"] == .int(code))
        let hint = error["data"]?["hint"]?.stringValue ?? ""
        #expect(hint.contains("Global Administrator") && hint.contains("Consent on behalf of your organization"))
    }

    @Test(arguments: [
        ("consent_declined", "consentDenied"), ("access_denied", "consentDenied"), ("mfa_required", "mfaRequired"),
        ("conditional_access", "conditionalAccessBlocked"), ("tampered_signature", "invalidToken"), ("wrong_issuer", "invalidToken"),
    ])
    func microsoftErrorsHaveTheirKinds(_ scenario: String, _ kind: String) async throws {
        let s = try await Self.setUp(system: "microsoft365")
        let (signInId, _) = try await Self.signIn(s, system: "microsoft365", scenario: scenario)
        let error = try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId])
        #expect(error["data"]?["kind"] == .string(kind), "\(JSONWriter.string(error))")
    }

    /// A Global Administrator who leaves "Consent on behalf of your organization" unticked
    /// consents for themselves only; real Graph lets them read the grants (Directory.Read.All is
    /// in the token) and shows a Principal grant: organizationConsentMissing, not a 403.
    @Test func adminWhoConsentedForThemselvesOnlyIsTold() async throws {
        let s = try await Self.setUp(system: "microsoft365")
        try s.idp.resetGrants(consentType: "none")
        let (signInId, _) = try await Self.signIn(s, system: "microsoft365", scenario: "consent_principal_only")
        _ = try await s.server.call("awaitSignIn", ["signInId": signInId])
        let result = try await Self.calendarResult(s)
        #expect(result["ok"] == false)
        #expect(result["error"]?["data"]?["kind"] == "organizationConsentMissing", "\(JSONWriter.string(result))")
        #expect(result["error"]?["data"]?["hint"]?.stringValue?.contains("Consent on behalf of your organization") == true)
        let grants = s.idp.requests().filter { $0["graphCall"] != nil && $0["graphCall"] != .null }
        #expect(grants.allSatisfy { $0["permissionOk"] == true }, "every Graph call had its permission")
    }

    /// A Global Administrator who ticks the box: the same sign-in, starting from no consent at
    /// all, tests green against a Graph that checks each call's permission.
    @Test func adminWhoConsentedForTheOrganizationTestsGreen() async throws {
        let s = try await Self.setUp(system: "microsoft365")
        try s.idp.resetGrants(consentType: "none")
        let (signInId, _) = try await Self.signIn(s, system: "microsoft365")
        _ = try await s.server.call("awaitSignIn", ["signInId": signInId])
        let result = try await Self.calendarResult(s)
        #expect(result["ok"] == true, "\(JSONWriter.string(result))")
    }

    @Test func nonAdministratorNeedsAdminApproval() async throws {
        let s = try await Self.setUp(system: "microsoft365")
        try s.idp.resetGrants(consentType: "none")
        let (signInId, _) = try await Self.signIn(s, system: "microsoft365", scenario: "user_not_admin")
        let error = try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId])
        #expect(error["data"]?["kind"] == "adminApprovalRequired", "\(JSONWriter.string(error))")
        #expect(error["data"]?["aadsts"] == 90094)
    }

    @Test func appNotConsentedInTheTenantIsCaught() async throws {
        let s = try await Self.setUp(system: "microsoft365")
        let (signInId, _) = try await Self.signIn(s, system: "microsoft365")
        _ = try await s.server.call("awaitSignIn", ["signInId": signInId])
        try s.idp.setScenario("consent_missing")
        let result = try await Self.calendarResult(s)
        #expect(result["error"]?["data"]?["kind"] == "organizationConsentMissing", "\(JSONWriter.string(result))")
    }

    /// Numbers from a server are bounded: an expires_in of 1e19 and a negative interval used to
    /// end the process (an Int conversion trapped).
    @Test func absurdDeviceCodeNumbersAreClampedAndServingContinues() async throws {
        let s = try await Self.setUp(system: "microsoft365", microsoftConfig: ["deviceExpiresIn": .number("1e19"), "deviceInterval": -3])
        let started = try await s.server.call("startSignIn", ["profileId": s.profileId, "system": "microsoft365", "flow": "deviceCode"])
        let expiresAt = try #require(started["expiresAt"]?.stringValue)
        #expect(expiresAt.count == 20 && expiresAt.hasPrefix("20"), "a day at most, not year 3e11: \(expiresAt)")
        let done = try await s.server.call("awaitSignIn", ["signInId": try #require(started["signInId"])], timeout: 30)
        #expect(done["account"]?["userPrincipalName"] == "admin@contoso.test")
        #expect(try await s.server.call("ping") == [:])
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

    /// protocols.md §7.3: the vendor's app is a public multi-tenant client and the admin has no
    /// secret. Admin consent first (no code), then code + PKCE, in one browser tab.
    @Test func tenantWideAdminConsentForThePublicClientInOneTab() async throws {
        let s = try await Self.setUp(system: "microsoft365")
        let started = try await s.server.call("startSignIn", ["profileId": s.profileId, "system": "microsoft365", "adminConsent": true])
        let url = try #require(started["authorizationUrl"]?.stringValue)
        #expect(url.hasPrefix("https://login.microsoftonline.com/organizations/v2.0/adminconsent?"), "\(url)")
        #expect(url.contains("Directory.Read.All") && !url.contains("code_challenge"))
        let page = try s.idp.playBrowser(authorizationURL: url)
        #expect(page.status == 200, "\(page.body)")
        let done = try await s.server.call("awaitSignIn", ["signInId": try #require(started["signInId"])])
        #expect(done["account"]?["adminConsent"] == true)
        #expect(done["account"]?["userPrincipalName"] == "admin@contoso.test")
        // Both legs reached the fake; the code was redeemed with PKCE and no secret.
        #expect(s.idp.requests(endpoint: "adminconsent").contains { $0["tenant"] == "organizations" })
        let authorize = s.idp.requests(endpoint: "authorize")
        #expect(authorize.count == 1)
        let exchange = try #require(s.idp.requests(endpoint: "token").first { $0["grantType"] == "authorization_code" })
        #expect(exchange["status"] == 200 && exchange["pkceOk"] == true && exchange["clientAuth"] == "none", "\(JSONWriter.string(exchange))")
        let profile = try await s.server.call("getProfile", ["profileId": s.profileId])
        #expect(profile["calendar"]?["microsoft365"]?["settings"]?["adminConsentGranted"] == true)
        // The consent covers the organization, so the connection test is green.
        let result = try await Self.calendarResult(s)
        #expect(result["ok"] == true, "\(JSONWriter.string(result))")
    }

    @Test func adminConsentGoesToTheConfiguredTenantNeverCommon() async throws {
        let s = try await Self.setUp(system: "microsoft365", tenant: "contoso.test")
        let started = try await s.server.call("startSignIn", ["profileId": s.profileId, "system": "microsoft365", "adminConsent": true])
        #expect(started["authorizationUrl"]?.stringValue?.hasPrefix("https://login.microsoftonline.com/contoso.test/v2.0/adminconsent?") == true)
        let t = try await Self.setUp(system: "microsoft365", tenant: "common")
        let error = try await t.server.callExpectingError("startSignIn", ["profileId": t.profileId, "system": "microsoft365", "adminConsent": true])
        #expect(error["data"]?["field"] == "adminConsent")
    }

    @Test(arguments: [("consent_declined", "consentDenied"), ("admin_consent_not_admin", "adminApprovalRequired")])
    func declinedAdminConsentEndsTheSignIn(_ scenario: String, _ kind: String) async throws {
        let s = try await Self.setUp(system: "microsoft365")
        let (signInId, page) = try await Self.signIn(s, system: "microsoft365", scenario: scenario, extra: ["adminConsent": true])
        #expect(page.status == 400)
        let error = try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId])
        #expect(error["data"]?["kind"] == .string(kind), "\(JSONWriter.string(error))")
        #expect(s.idp.requests(endpoint: "authorize").isEmpty, "no second leg after a refusal")
    }

    @Test func graphRefusalNamesTheMissingPermission() async throws {
        let s = try await Self.setUp(system: "microsoft365")
        let (signInId, _) = try await Self.signIn(s, system: "microsoft365")
        _ = try await s.server.call("awaitSignIn", ["signInId": signInId])
        try s.idp.setScenario("graph_forbidden")
        let result = try await Self.calendarResult(s)
        let data = result["error"]?["data"]
        #expect(data?["kind"] == "insufficientPrivileges")
        #expect(data?["missingPermission"] == "User.Read.All", "\(JSONWriter.string(result))")
        #expect(result["error"]?["message"]?.stringValue?.contains("User.Read.All") == true)
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

    @Test(arguments: [
        ("admin_policy_enforced", "appNotTrusted"), ("access_denied", "consentDenied"), ("scopes_partial", "scopesNotGranted"),
        ("nonce_mismatch", "invalidToken"),
    ])
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
        _ = try await s.server.call(
            "setProviderSettings", ["system": "superOffice", "clientId": "syncwizard-superoffice", "clientSecret": "so-application-token"])
        let (so, _) = try await Self.signIn(s, system: "superOffice")
        _ = try await s.server.call("awaitSignIn", ["signInId": so])
        #expect(try await s.server.callExpectingError("nextStep", ["profileId": s.profileId])["data"]?["kind"] == "stepIncomplete")
        let all = try await s.server.call("testConnection", ["profileId": s.profileId], timeout: 30)
        #expect(all["results"]?.arrayValue?.allSatisfy { $0["ok"] == true } == true, "\(JSONWriter.string(all))")
        #expect(try await s.server.call("nextStep", ["profileId": s.profileId]) == ["step": "selectUsers"])
    }
}
