import Foundation
import RPCCore
import TestSupport
import Testing
import WizardContract

/// `diagnose` through the built binary against the fakes: one test per fault a step claims to
/// detect (its status, kind and remediation), the report's secret canaries, and the command line.
@Suite struct DiagnoseEndToEndTests {
    static let users: JSONValue = ["CONTOSO:alice:Passw0rd!", "CORP:alice:Passw0rd!"]
    static let settings: JSONValue = [
        "action": "settings",
        "protocols": [["type": "EXPR", "ewsUrl": "https://mail.contoso.test/EWS/Exchange.asmx", "oabUrl": "https://mail.contoso.test/OAB/abc/"]],
    ]
    static let mail: JSONObject = [
        "ews": ["path": "/EWS/Exchange.asmx", "result": "success", "byMailbox": ["boss@contoso.test": "soapFault:ErrorImpersonateUserDenied"]],
        "oab": ["path": "/OAB/abc/oab.xml", "status": 200],
    ]
    static let routedHosts = ["contoso.test", "autodiscover.contoso.test", "mail.contoso.test"]

    struct Exchange {
        let fake: FakeExchange
        let server: ServerProcess
        let profileId: JSONValue
        let arguments: [String]
    }

    /// A fake Exchange, a server routed to it, and a profile with Exchange selected. `connectTo`
    /// entries given here win over the fake's (libcurl uses the first that matches).
    static func exchange(
        hosts: JSONValue, users: JSONValue = users, connectTo: [String] = [], secretStore: String = "memory", stepTimeout: Int = 3
    ) async throws -> Exchange {
        let fake = try await FakeExchange.start(config: ["hosts": hosts, "users": users])
        var arguments = [
            "--secret-store", secretStore, "--ca-file", fake.caFile, "--dns-server", "127.0.0.1:\(fake.dnsPort)",
            "--autodiscover-budget", "8", "--diagnose-step-timeout", String(stepTimeout),
        ]
        for entry in connectTo + fake.connectTo(hosts: routedHosts) + fake.connectToHTTP(hosts: routedHosts) { arguments += ["--connect-to", entry] }
        let server = try ServerProcess(arguments: arguments)
        let id = try #require(try await server.call("createProfile", ["name": "Exchange"])["id"])
        _ = try await server.call("selectCalendarSystem", ["profileId": id, "system": "exchange"])
        return Exchange(fake: fake, server: server, profileId: id, arguments: arguments)
    }

    /// Credentials without Autodiscover, then the EWS and OAB URLs by hand.
    static func configure(
        _ e: Exchange, user: String = "alice", domain: String? = "CONTOSO", password: String = "Passw0rd!", impersonate: String? = nil
    ) async throws {
        var params: JSONObject = [
            "profileId": e.profileId, "userName": .string(user), "email": "alice@contoso.test", "password": .string(password), "autodiscover": false,
        ]
        if let domain { params["domain"] = .string(domain) }
        if let impersonate { params["impersonateMailbox"] = .string(impersonate) }
        _ = try await e.server.call("submitExchangeCredentials", .object(params))
        _ = try await e.server.call(
            "overrideEndpoints",
            ["profileId": e.profileId, "ewsUrl": "https://mail.contoso.test/EWS/Exchange.asmx", "oabUrl": "https://mail.contoso.test/OAB/abc/"])
    }

    static func diagnose(_ server: ServerProcess, _ profileId: JSONValue, system: String = "calendar", reportPath: String? = nil) async throws -> JSONValue {
        var params: JSONObject = ["profileId": profileId, "system": .string(system)]
        if let reportPath { params["reportPath"] = .string(reportPath) }
        return try await server.call("diagnose", .object(params), timeout: 120)
    }

    static func step(_ result: JSONValue, _ id: String) throws -> JSONValue {
        try #require(result["steps"]?.arrayValue?.first { $0["id"]?.stringValue == id }, "no step \(id) in \(JSONWriter.string(result))")
    }

    /// The step's status and kind, and a remediation whenever it warns or fails.
    static func expect(_ result: JSONValue, _ id: String, _ status: String, _ kind: String? = nil, sourceLocation: SourceLocation = #_sourceLocation)
        throws -> JSONValue
    {
        let step = try step(result, id)
        #expect(step["status"]?.stringValue == status, "\(id): \(JSONWriter.string(step))", sourceLocation: sourceLocation)
        #expect(step["kind"]?.stringValue == kind, "\(id): \(JSONWriter.string(step))", sourceLocation: sourceLocation)
        if status == "warn" || status == "fail" {
            #expect((step["remediation"]?.stringValue ?? "").count > 20, "\(id) has no remediation", sourceLocation: sourceLocation)
        }
        return step
    }

    // MARK: Exchange

    @Test func healthyExchangePathPassesAndEveryStepIsTimedWithItsEvidence() async throws {
        let e = try await Self.exchange(hosts: ["autodiscover.contoso.test": ["autodiscover": Self.settings], "mail.contoso.test": .object(Self.mail)])
        try await Self.configure(e)
        let result = try await Self.diagnose(e.server, e.profileId)
        #expect(result["ok"] == true, "\(JSONWriter.string(result))")
        let tls = try Self.expect(result, "exchange.tls@mail.contoso.test", "pass")
        #expect(tls["evidence"]?["protocol"]?.stringValue?.hasPrefix("TLSv1.") == true, "\(JSONWriter.string(tls))")
        #expect(tls["evidence"]?["chainVerified"] == true)
        #expect((tls["evidence"]?["expiresInDays"]?.intValue ?? 0) > 30)
        #expect(tls["evidence"]?["subjectAltNames"]?.arrayValue?.contains("mail.contoso.test") == true)
        let auth = try Self.expect(result, "exchange.auth@mail.contoso.test", "pass")
        #expect(auth["evidence"]?["schemes"]?.arrayValue?.contains("NTLM") == true)
        let ews = try Self.expect(result, "exchange.ews", "pass")
        #expect(ews["evidence"]?["serverVersion"] == "15.1.2507.6")
        _ = try Self.expect(result, "exchange.autodiscover", "pass")
        _ = try Self.expect(result, "exchange.oab", "pass")
        _ = try Self.expect(result, "exchange.dns@mail.contoso.test", "pass")
        _ = try Self.expect(result, "exchange.impersonation", "skipped")
        let hints = try Self.expect(result, "exchange.accountHints", "pass")
        #expect(hints["evidence"]?["netbiosDomain"] == "CONTOSO")
        for step in result["steps"]?.arrayValue ?? [] {
            #expect(step["durationMs"]?.intValue != nil && step["system"] == "exchange")
        }
    }

    @Test func expiredAndWrongNameCertificatesAreNamed() async throws {
        var mail = Self.mail
        mail["expired"] = true
        let e = try await Self.exchange(hosts: [
            "autodiscover.contoso.test": ["certificateName": "www.fabrikam.test", "autodiscover": Self.settings], "mail.contoso.test": .object(mail),
        ])
        try await Self.configure(e)
        let result = try await Self.diagnose(e.server, e.profileId)
        #expect(result["ok"] == false)
        // The EWS host's certificate: a failure; an Autodiscover candidate's: a warning.
        let expired = try Self.expect(result, "exchange.tls@mail.contoso.test", "fail", "certificateUntrusted")
        #expect(expired["message"]?.stringValue?.contains("expired") == true, "\(JSONWriter.string(expired))")
        #expect(expired["remediation"]?.stringValue?.contains("Renew") == true)
        #expect((expired["evidence"]?["expiresInDays"]?.intValue ?? 0) < 0)
        let wrongName = try Self.expect(result, "exchange.tls@autodiscover.contoso.test", "warn", "certificateUntrusted")
        #expect(wrongName["message"]?.stringValue?.contains("not for autodiscover.contoso.test") == true, "\(JSONWriter.string(wrongName))")
        // What needs the handshake is skipped and says why; EWS itself still runs and fails on TLS.
        let skipped = try Self.expect(result, "exchange.auth@mail.contoso.test", "skipped")
        #expect(skipped["message"]?.stringValue?.contains("TLS handshake") == true)
        _ = try Self.expect(result, "exchange.ews", "fail", "certificateUntrusted")
        // The handshake facts are read even when verification fails.
        #expect(expired["evidence"]?["protocol"]?.stringValue?.hasPrefix("TLSv1.") == true)
        #expect(expired["evidence"]?["chainVerified"] == false)
    }

    @Test func aCertificateThePersonPinnedPassesAndSaysSo() async throws {
        var mail = Self.mail
        mail["untrusted"] = true
        let e = try await Self.exchange(hosts: ["mail.contoso.test": .object(mail)])
        try await Self.configure(e)
        var result = try await Self.diagnose(e.server, e.profileId)
        let untrusted = try Self.expect(result, "exchange.tls@mail.contoso.test", "fail", "certificateUntrusted")
        #expect(untrusted["message"]?.stringValue?.contains("does not lead to a trusted CA") == true, "\(JSONWriter.string(untrusted))")
        let sha256 = try #require(e.fake.certificateSHA256(host: "mail.contoso.test"))
        #expect(untrusted["evidence"]?["sha256"]?.stringValue == sha256)
        _ = try await e.server.call("trustCertificate", ["profileId": e.profileId, "host": "mail.contoso.test", "sha256": .string(sha256)])
        result = try await Self.diagnose(e.server, e.profileId)
        let pinned = try Self.expect(result, "exchange.tls@mail.contoso.test", "pass")
        #expect(pinned["message"]?.stringValue?.contains("pinned by you") == true, "\(JSONWriter.string(pinned))")
        _ = try Self.expect(result, "exchange.ews", "pass")
    }

    @Test func candidatesThatHangAreReportedAtTheirLayer() async throws {
        // TCP: a listener whose accept queue is full drops the SYN, as a filtering firewall does.
        let blackhole = try FullBacklogListener()
        let e = try await Self.exchange(
            hosts: ["autodiscover.contoso.test": ["behaviour": "hang"], "mail.contoso.test": .object(Self.mail)],
            connectTo: ["contoso.test:443:127.0.0.1:\(blackhole.port)"], stepTimeout: 2)
        try await Self.configure(e)
        let result = try await Self.diagnose(e.server, e.profileId)
        let tcp = try Self.expect(result, "exchange.tcp@contoso.test", "warn", "timeout")
        #expect(tcp["message"]?.stringValue?.contains("TCP connection") == true, "\(JSONWriter.string(tcp))")
        _ = try Self.expect(result, "exchange.tls@contoso.test", "skipped")
        // TLS: the connection is accepted, the ServerHello never comes; reported as TLS, not TCP.
        _ = try Self.expect(result, "exchange.tcp@autodiscover.contoso.test", "pass")
        let tls = try Self.expect(result, "exchange.tls@autodiscover.contoso.test", "warn", "timeout")
        #expect(tls["message"]?.stringValue?.contains("TLS handshake") == true, "\(JSONWriter.string(tls))")
        #expect((tls["durationMs"]?.intValue ?? 0) >= 1900)
        // Candidates only: the path through mail.contoso.test still works.
        #expect(result["ok"] == true, "\(JSONWriter.string(result))")
        withExtendedLifetime(blackhole) {}
    }

    @Test func basicOnlyEndpointIsAWarning() async throws {
        var mail = Self.mail
        mail["auth"] = "basic"
        let e = try await Self.exchange(hosts: ["mail.contoso.test": .object(mail)])
        try await Self.configure(e)
        let result = try await Self.diagnose(e.server, e.profileId)
        let auth = try Self.expect(result, "exchange.auth@mail.contoso.test", "warn", "weakAuthentication")
        #expect(auth["evidence"]?["schemes"] == ["Basic"])
        #expect(auth["remediation"]?.stringValue?.contains("Windows authentication") == true)
        // Basic still works, so EWS passes; the domain cannot be read without NTLM.
        _ = try Self.expect(result, "exchange.ews", "pass")
        _ = try Self.expect(result, "exchange.accountHints", "fail", "hintsUnavailable")
    }

    @Test func impersonationDeniedIsItsOwnStep() async throws {
        let e = try await Self.exchange(hosts: ["mail.contoso.test": .object(Self.mail)])
        try await Self.configure(e, impersonate: "boss@contoso.test")
        let result = try await Self.diagnose(e.server, e.profileId)
        _ = try Self.expect(result, "exchange.ews", "pass")
        let step = try Self.expect(result, "exchange.impersonation", "fail", "impersonationDenied")
        #expect(step["remediation"]?.stringValue?.contains("ApplicationImpersonation") == true)
        #expect(step["evidence"]?["responseCode"] == "ErrorImpersonateUserDenied")
    }

    @Test func netbiosDomainDifferentFromTheEmailDomainIsNamed() async throws {
        var mail = Self.mail
        mail["ntlmDomain"] = ["netbios": "CORP", "dns": "corp.contoso.local", "forest": "contoso.local", "computer": "EXCH01"]
        let e = try await Self.exchange(hosts: ["mail.contoso.test": .object(mail)], users: ["CORP:alice:Passw0rd!"])
        // The user guessed the domain from the e-mail address.
        try await Self.configure(e, domain: "CONTOSO")
        let result = try await Self.diagnose(e.server, e.profileId)
        _ = try Self.expect(result, "exchange.ews", "fail", "invalidCredentials")
        let hints = try Self.expect(result, "exchange.accountHints", "warn", "invalidCredentials")
        #expect(hints["evidence"]?["netbiosDomain"] == "CORP")
        #expect(hints["evidence"]?["dnsDomain"] == "corp.contoso.local")
        #expect(hints["remediation"]?.stringValue?.contains("CORP") == true, "\(JSONWriter.string(hints))")
    }

    // MARK: Microsoft 365, Google, SuperOffice

    static let clients: JSONValue = [
        "syncwizard-superoffice": "so-application-token", "syncwizard-microsoft": nil, "syncwizard-google": "google-desktop-client-secret",
    ]

    struct Providers {
        let idp: FakeIdentityProvider
        let server: ServerProcess
        let profileId: JSONValue
    }

    static func providers(
        calendar: String?, microsoftClient: String = "syncwizard-microsoft", clients: JSONValue = clients, googleSecret: String = "google-desktop-client-secret"
    )
        async throws -> Providers
    {
        let idp = try FakeIdentityProvider(config: ["clients": clients])
        var arguments = ["--secret-store", "memory", "--ca-file", idp.caFile]
        for entry in idp.connectTo() { arguments += ["--connect-to", entry] }
        let server = try ServerProcess(arguments: arguments)
        _ = try await server.call("setProviderSettings", ["system": "microsoft365", "clientId": .string(microsoftClient), "tenant": "contoso.test"])
        _ = try await server.call("setProviderSettings", ["system": "google", "clientId": "syncwizard-google", "clientSecret": .string(googleSecret)])
        _ = try await server.call(
            "setProviderSettings",
            ["system": "superOffice", "clientId": "syncwizard-superoffice", "clientSecret": "so-application-token", "environment": "online"])
        let id = try #require(try await server.call("createProfile", ["name": "Providers"])["id"])
        if let calendar { _ = try await server.call("selectCalendarSystem", ["profileId": id, "system": .string(calendar)]) }
        return Providers(idp: idp, server: server, profileId: id)
    }

    static func signIn(_ p: Providers, _ system: String, scenario: String? = nil) async throws {
        let started = try await p.server.call("startSignIn", ["profileId": p.profileId, "system": .string(system)])
        let page = try p.idp.playBrowser(authorizationURL: try #require(started["authorizationUrl"]?.stringValue), scenario: scenario)
        #expect(page.status == 200, "\(page.body)")
        _ = try await p.server.call("awaitSignIn", ["signInId": try #require(started["signInId"])])
    }

    @Test func microsoftAppNotInTheTenantIsNamed() async throws {
        let p = try await Self.providers(calendar: "microsoft365", microsoftClient: "app-registered-elsewhere")
        let result = try await Self.diagnose(p.server, p.profileId)
        _ = try Self.expect(result, "microsoft365.tenant", "pass")
        let app = try Self.expect(result, "microsoft365.app", "fail", "providerNotConfigured")
        #expect(app["message"]?.stringValue?.contains("AADSTS700016") == true)
        #expect(app["remediation"]?.stringValue?.contains("Consent on behalf of your organization") == true)
        _ = try Self.expect(result, "microsoft365.token", "fail", "notSignedIn")
    }

    @Test func microsoftConsentForTheAdminAloneIsNamed() async throws {
        let p = try await Self.providers(calendar: "microsoft365")
        try await Self.signIn(p, "microsoft365")
        // The admin's consent covers themselves only (a Principal grant, protocols.md §2.3).
        try p.idp.resetGrants(consentType: "Principal")
        let result = try await Self.diagnose(p.server, p.profileId)
        _ = try Self.expect(result, "microsoft365.token", "pass")
        _ = try Self.expect(result, "microsoft365.scopes", "pass")
        let consent = try Self.expect(result, "microsoft365.organizationConsent", "fail", "organizationConsentMissing")
        #expect(consent["remediation"]?.stringValue?.contains("Consent on behalf of your organization") == true)
        _ = try Self.expect(result, "microsoft365.directory", "pass")
    }

    @Test func microsoftEWSOverrideAtExchangeOnlineWarnsOfItsRetirement() async throws {
        let p = try await Self.providers(calendar: "microsoft365")
        try await Self.signIn(p, "microsoft365")
        _ = try await p.server.call("overrideEndpoints", ["profileId": p.profileId, "ewsUrl": "https://outlook.office365.com/EWS/Exchange.asmx"])
        // Without consent for Exchange Online's EWS.AccessAsUser.All the EWS token is refused (AADSTS65001).
        var result = try await Self.diagnose(p.server, p.profileId)
        _ = try Self.expect(result, "microsoft365.ews", "fail", "adminApprovalRequired")
        try p.idp.setGrants([
            ["clientId": "syncwizard-microsoft", "consentType": "AllPrincipals", "scopes": "User.Read User.Read.All Calendars.ReadWrite Directory.Read.All"],
            ["clientId": "syncwizard-microsoft", "consentType": "AllPrincipals", "resource": "outlook", "scopes": "EWS.AccessAsUser.All"],
        ])
        result = try await Self.diagnose(p.server, p.profileId)
        _ = try Self.expect(result, "microsoft365.ews", "pass")
        let retiring = try Self.expect(result, "microsoft365.ewsRetirement", "warn", "endpointInvalid")
        #expect(retiring["message"]?.stringValue?.contains("1 October 2026") == true, "\(JSONWriter.string(retiring))")
        #expect(retiring["message"]?.stringValue?.contains("1 April 2027") == true)
    }

    @Test func googleAppNotTrustedByTheAdminIsNamed() async throws {
        let p = try await Self.providers(calendar: "google")
        try await Self.signIn(p, "google")
        try p.idp.setScenario("admin_policy_enforced", provider: "google")
        let result = try await Self.diagnose(p.server, p.profileId)
        let trusted = try Self.expect(result, "google.trustedApp", "fail", "appNotTrusted")
        #expect(trusted["remediation"]?.stringValue?.contains("Trusted") == true)
        _ = try Self.expect(result, "google.scopes", "skipped")
    }

    @Test func googleScopesLeftUntickedAreNamed() async throws {
        let p = try await Self.providers(calendar: "google")
        try await Self.signIn(p, "google")
        try p.idp.setScenario("scopes_partial", provider: "google")
        let result = try await Self.diagnose(p.server, p.profileId)
        _ = try Self.expect(result, "google.trustedApp", "pass")
        let scopes = try Self.expect(result, "google.scopes", "fail", "scopesNotGranted")
        #expect(scopes["remediation"]?.stringValue?.contains("Select all") == true)
        #expect(scopes["evidence"]?["missingScopes"] == ["https://www.googleapis.com/auth/admin.directory.user.readonly"])
    }

    @Test func suspendedSuperOfficeTenantIsNamed() async throws {
        let p = try await Self.providers(calendar: nil)
        try await Self.signIn(p, "superOffice")
        try p.idp.setScenario("suspended", provider: "superoffice")
        let result = try await Self.diagnose(p.server, p.profileId, system: "superOffice")
        _ = try Self.expect(result, "superOffice.discovery", "pass")
        let state = try Self.expect(result, "superOffice.tenantState", "fail", "tenantNotRunning")
        #expect(state["evidence"]?["state"] == "Suspended")
        _ = try Self.expect(result, "superOffice.currentPrincipal", "skipped")
    }

    // MARK: Report, canaries, progress

    @Test func reportAndResultCarryNoSecretOfAnyKind() async throws {
        let clientSecret = "CanaryClientSecret-\(UUID().uuidString.prefix(8))"
        var clients = Self.clients.objectValue ?? [:]
        clients["syncwizard-google"] = .string(clientSecret)
        let p = try await Self.providers(calendar: "google", clients: .object(clients), googleSecret: clientSecret)
        try await Self.signIn(p, "google")
        try await Self.signIn(p, "superOffice")
        let report = TestPaths.makeTemporaryDirectory("diagnose-report") + "/report.md"
        p.server.request("diagnose", ["profileId": p.profileId, "reportPath": .string(report)], id: "d")
        let result = try await p.server.response(to: "d", timeout: 120)
        #expect(result["result"]?["reportPath"]?.stringValue == report)
        // A progress notification per step that ran, stage = its id.
        let stages = p.server.pendingMessages.filter { $0["method"] == "progress" }.compactMap { $0["params"]?["stage"]?.stringValue }
        let ran = (result["result"]?["steps"]?.arrayValue ?? []).filter { $0["status"] != "skipped" }.compactMap { $0["id"]?.stringValue }
        #expect(Set(ran).isSubset(of: Set(stages)), "\(stages) vs \(ran)")
        let text = try String(contentsOfFile: report, encoding: .utf8)
        #expect(text.contains("# syncwizard diagnosis") && text.contains("google.trustedApp") && text.contains("superOffice.currentPrincipal"))
        #expect(text.contains("| syncwizard | 0.1.0 |"))
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: report)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        p.server.closeInput()
        _ = try await p.server.waitForExit()
        let secrets = try p.idp.issuedSecrets() + [clientSecret, "so-application-token"]
        #expect(secrets.count > 4)
        let outputs = [
            ("report", text), ("result", JSONWriter.string(result)), ("stdout", String(decoding: p.server.stdoutBytes, as: UTF8.self)),
            ("stderr", p.server.stderrText),
        ]
        for (name, output) in outputs {
            for secret in secrets { #expect(!output.contains(secret), "\(name) contains a secret") }
        }
    }
}

/// `syncwizard diagnose` on the command line.
@Suite struct DiagnoseCommandTests {
    static func run(_ arguments: [String], configDirectory: String) throws -> (status: Int32, stdout: String, stderr: String) {
        let (status, stdout, stderr) = try ServerEndToEndTests.runToExit(["diagnose", "--config-dir", configDirectory] + arguments)
        return (status, stdout, stderr)
    }

    @Test func failingStepsMakeTheExitStatusOne() async throws {
        let e = try await DiagnoseEndToEndTests.exchange(hosts: ["mail.contoso.test": .object(DiagnoseEndToEndTests.mail)])
        try await DiagnoseEndToEndTests.configure(e)
        let id = try #require(e.profileId.stringValue)
        e.server.closeInput()
        _ = try await e.server.waitForExit()
        // The password was in the server's memory store only: the profile step fails, what needs
        // the password is skipped, and the network steps still run.
        let run = try Self.run(["--profile", id, "--system", "calendar"] + e.arguments, configDirectory: e.server.configDirectory)
        #expect(run.status == 1, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("FAIL  exchange.profile"), "\(run.stdout)")
        #expect(run.stdout.contains("kind: notSignedIn") && run.stdout.contains("what to do: "))
        #expect(run.stdout.contains("SKIP  exchange.ews") && run.stdout.contains("PASS  exchange.tls@mail.contoso.test"), "\(run.stdout)")
        #expect(run.stdout.contains("FAILED: "))
        // Not a terminal: one line per step start on stderr, no spinner.
        #expect(run.stderr.contains("… exchange.profile: "), "\(run.stderr)")
        #expect(!run.stderr.contains("\r"))
        #expect(try Self.run(["--profile", "nope"], configDirectory: e.server.configDirectory).status == 1)
        #expect(try Self.run([], configDirectory: e.server.configDirectory).status == 64)
    }
}

/// With the password in the (test) keyring, a healthy path exits 0 and the report holds no password.
@Suite(.enabled(if: TestPaths.hasTestKeyring, "needs scripts/with-test-keyring.sh"))
struct DiagnoseKeyringTests {
    @Test func healthyPathExitsZeroAndTheReportHasNoPassword() async throws {
        let canary = "Pw-canary-\(UUID().uuidString.prefix(8))"
        let e = try await DiagnoseEndToEndTests.exchange(
            hosts: ["autodiscover.contoso.test": ["autodiscover": DiagnoseEndToEndTests.settings], "mail.contoso.test": .object(DiagnoseEndToEndTests.mail)],
            users: .array([.string("CONTOSO:alice:\(canary)")]), secretStore: "keyring")
        try await DiagnoseEndToEndTests.configure(e, password: canary)
        let id = try #require(e.profileId.stringValue)
        e.server.closeInput()
        _ = try await e.server.waitForExit()
        let report = TestPaths.makeTemporaryDirectory("diagnose-cli") + "/report.md"
        let arguments = ["--profile", id, "--system", "calendar", "--report", report] + e.arguments
        let run = try DiagnoseCommandTests.run(arguments, configDirectory: e.server.configDirectory)
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("PASS  exchange.ews") && run.stdout.contains("report written to \(report)"))
        let text = try String(contentsOfFile: report, encoding: .utf8)
        #expect(text.contains("exchange.tls@mail.contoso.test"))
        for output in [text, run.stdout, run.stderr] { #expect(!output.contains(canary)) }
        #expect(!e.fake.stderrText.contains(canary))
    }
}

/// A TCP listener whose accept queue is full: Linux drops further SYNs (tcp_abort_on_overflow
/// 0), so a connect to it hangs the way one to a filtering firewall does.
final class FullBacklogListener {
    let port: Int
    private var sockets: [Int32] = []

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        guard bound, listen(listener, 0) == 0 else { throw POSIXError(.EADDRINUSE) }
        port = Int(UInt16(bigEndian: address.sin_port))
        sockets.append(listener)
        // Fill the queue (backlog 0 holds one); the fillers' own SYNs stay pending.
        for _ in 0..<3 {
            let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            _ = fcntl(filler, F_SETFL, fcntl(filler, F_GETFL) | O_NONBLOCK)
            var target = address
            _ = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            sockets.append(filler)
        }
        usleep(100_000)
    }

    deinit {
        for fd in sockets { close(fd) }
    }
}
