import Foundation
import RPCCore
import TestSupport
import Testing

/// Exchange setup through the built binary against real peers: submitExchangeCredentials with
/// Autodiscover, then testConnection, over real TLS on loopback to the pyspnego / MIT acceptor
/// (autodiscover.contoso.test and mail.contoso.test via --connect-to) with the realm's KDC.
/// The binary runs with KRB5CCNAME at a file that must never appear and HOME and TMPDIR in
/// empty directories that must stay empty: the tickets live in MEMORY: caches only.
@Suite(.serialized) struct IntegratedAuthEndToEndTests {
    static let autodiscoverHost = "autodiscover.contoso.test"
    static let mailHost = "mail.contoso.test"

    struct Run {
        let acceptor: IntegratedAuthProcess
        let server: ServerProcess
        let profileId: JSONValue
        let scratch: String

        var defaultCache: String { scratch + "/krb5cc-default" }
        var home: String { scratch + "/home" }
        var tmp: String { scratch + "/tmp" }

        /// The acceptor's log for one host (the Host header).
        func requests(host: String) -> [JSONValue] {
            acceptor.logEntries().filter { $0["host"]?.stringValue == host }
        }

        /// Nothing Kerberos (or anything else) wrote to disk where a ticket cache could go.
        func nothingWritten() -> Bool {
            let home = (try? FileManager.default.contentsOfDirectory(atPath: self.home)) ?? ["unreadable"]
            let tmp = (try? FileManager.default.contentsOfDirectory(atPath: self.tmp)) ?? ["unreadable"]
            return !FileManager.default.fileExists(atPath: defaultCache) && home.isEmpty && tmp.isEmpty
                && !FileManager.default.fileExists(atPath: "/tmp/krb5cc_\(getuid())")
        }
    }

    static func start(_ acceptor: IntegratedAuthProcess, environment extra: [String: String] = [:]) async throws -> Run {
        let realm = try IntegratedAuthRealm.shared.get()
        let scratch = TestPaths.makeTemporaryDirectory("integrated-e2e")
        for dir in ["home", "tmp"] { try FileManager.default.createDirectory(atPath: scratch + "/" + dir, withIntermediateDirectories: true) }
        let port = acceptor.int("httpsPort")
        // contoso.test (the first https candidate) and the http redirect probe hit a closed port.
        let closed = 9
        var arguments = ["--secret-store", "memory", "--ca-file", acceptor.string("caFile"), "--dns-server", "127.0.0.1:\(closed)"]
        for entry in [
            "\(mailHost):443:127.0.0.1:\(port)", "\(autodiscoverHost):443:127.0.0.1:\(port)",
            "contoso.test:443:127.0.0.1:\(closed)", "\(autodiscoverHost):80:127.0.0.1:\(closed)",
        ] {
            arguments += ["--connect-to", entry]
        }
        var environment = [
            "KRB5_CONFIG": realm.string("krb5Config"), "KRB5CCNAME": "FILE:" + scratch + "/krb5cc-default",
            "HOME": scratch + "/home", "TMPDIR": scratch + "/tmp",
        ]
        for (key, value) in extra { environment[key] = value }
        let server = try ServerProcess(arguments: arguments, environment: environment)
        let profile = try await server.call("createProfile", ["name": "Exchange"])
        let id = try #require(profile["id"])
        _ = try await server.call("selectCalendarSystem", ["profileId": id, "system": "exchange"])
        return Run(acceptor: acceptor, server: server, profileId: id, scratch: scratch)
    }

    static func submit(_ run: Run, password: String = "Passw0rd!") -> JSONValue {
        ["profileId": run.profileId, "userName": "alice", "domain": "CONTOSO", "email": "alice@contoso.test", "password": .string(password)]
    }

    static func settingsAttempt(_ result: JSONValue) -> String {
        (result["autodiscover"]?["attempts"]?.arrayValue ?? []).first { $0["outcome"] == "settings" }?["detail"]?.stringValue ?? ""
    }

    static func checks(_ tested: JSONValue) -> [JSONValue] {
        tested["results"]?.arrayValue?.first?["checks"]?.arrayValue ?? []
    }

    /// Extended Protection = Require, NTLM only: Autodiscover, EWS and the OAB all go through
    /// NTLMv2 with MsvAvChannelBindings; each authenticated request is 3 round trips (the
    /// unauthenticated probe, NEGOTIATE → CHALLENGE, AUTHENTICATE → 200) on one connection.
    @Test func exchangeSetupWithNTLMWhereTheServerRequiresChannelBinding() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: "NTLM", requireCBT: true)
        let run = try await Self.start(acceptor)
        let result = try await run.server.call("submitExchangeCredentials", Self.submit(run), timeout: 60)
        #expect(result["ewsUrl"] == "https://mail.contoso.test/EWS/Exchange.asmx", "\(JSONWriter.string(result))")
        #expect(result["oabUrl"] == "https://mail.contoso.test/OAB/abc/")
        #expect(Self.settingsAttempt(result).contains("(NTLM with channel binding)"), "\(JSONWriter.string(result))")
        let discovery = run.requests(host: Self.autodiscoverHost)
        #expect(discovery.map { $0["token"]?.stringValue ?? "probe" } == ["probe", "ntlm-negotiate", "ntlm-authenticate"], "\(discovery)")
        #expect(discovery.last?["outcome"] == "ok")
        #expect(Set(discovery.compactMap { $0["connection"]?.intValue }).count == 1)

        let tested = try await run.server.call("testConnection", ["profileId": run.profileId, "system": "calendar"], timeout: 60)
        let checks = Self.checks(tested)
        #expect(tested["results"]?.arrayValue?.first?["ok"] == true, "\(JSONWriter.string(tested))")
        #expect(checks.compactMap { $0["name"]?.stringValue } == ["ewsCalendar", "offlineAddressBook"])
        #expect(checks.first?["message"]?.stringValue?.contains("Authenticated with NTLM with channel binding") == true)
        let mail = run.requests(host: Self.mailHost)
        // EWS: probe + 2 legs; the OAB then rides the connection NTLM authenticated (IIS keeps it).
        #expect(mail.filter { $0["path"] == "/EWS/Exchange.asmx" }.count == 3, "\(mail)")
        #expect(mail.contains { $0["path"] == "/OAB/abc/oab.xml" && $0["outcome"] == "ok" }, "\(mail)")
        #expect(run.nothingWritten())
        #expect(!run.server.stderrSnapshot.contains("Passw0rd!"))
    }

    /// NTLM disabled on the server: Kerberos with channel binding from a ticket the binary got
    /// from the password (one AP-REQ after the probe: 2 requests per authenticated call).
    @Test func exchangeSetupWithKerberosOnly() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: "Negotiate", requireCBT: true, noNTLM: true)
        let run = try await Self.start(acceptor)
        let result = try await run.server.call("submitExchangeCredentials", Self.submit(run), timeout: 60)
        #expect(result["ewsUrl"] == "https://mail.contoso.test/EWS/Exchange.asmx", "\(JSONWriter.string(result))")
        #expect(Self.settingsAttempt(result).contains("(Kerberos with channel binding)"), "\(JSONWriter.string(result))")
        let discovery = run.requests(host: Self.autodiscoverHost)
        #expect(discovery.map { $0["token"]?.stringValue ?? "probe" } == ["probe", "kerberos"], "\(discovery)")
        #expect(discovery.last?["user"] == "alice@CONTOSO.TEST")

        let tested = try await run.server.call("testConnection", ["profileId": run.profileId, "system": "calendar"], timeout: 60)
        #expect(tested["results"]?.arrayValue?.first?["ok"] == true, "\(JSONWriter.string(tested))")
        #expect(Self.checks(tested).first?["message"]?.stringValue?.contains("Authenticated with Kerberos with channel binding") == true)
        #expect(!acceptor.logEntries().contains { $0["token"]?.stringValue?.hasPrefix("ntlm") == true })
        #expect(run.nothingWritten())
    }

    /// Without gss-ntlmssp (hidden from GSSAPI by an empty GSS_MECH_CONFIG) only libcurl's NTLM
    /// is left, which sends no binding: the server that requires one refuses it, and the user
    /// reads channelBindingRequired with Extended Protection in the hint, not "wrong password".
    @Test func noChannelBindingPathIsChannelBindingRequired() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: "NTLM", requireCBT: true)
        let mechConfig = TestPaths.makeTemporaryDirectory("no-mechs") + "/mech"
        FileManager.default.createFile(atPath: mechConfig, contents: Data())
        let run = try await Self.start(acceptor, environment: ["GSS_MECH_CONFIG": mechConfig])
        let error = try await run.server.callExpectingError("submitExchangeCredentials", Self.submit(run), timeout: 60)
        #expect(error["data"]?["kind"] == "channelBindingRequired", "\(JSONWriter.string(error))")
        #expect(error["data"]?["hint"]?.stringValue?.contains("Extended Protection") == true)
        #expect(error["data"]?["attempts"]?.arrayValue?.contains { $0["outcome"] == "channelBindingRequired" } == true)
        #expect(acceptor.logEntries().contains { $0["error"]?.stringValue?.contains("BadBindings") == true }, "\(acceptor.logEntries())")
    }

    /// Autodiscover stops on what the KDC and the server said, not with a generic
    /// autodiscoverFailed: a wrong password is invalidCredentials (the KDC refused it; nothing
    /// reached the acceptor but the probes), a server clock 10 minutes ahead is clockSkew.
    @Test func autodiscoverReportsWrongPasswordAndClockSkewAsSuch() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: "Negotiate", requireCBT: true, noNTLM: true)
        let run = try await Self.start(acceptor)
        let wrong = try await run.server.callExpectingError("submitExchangeCredentials", Self.submit(run, password: "wrong"), timeout: 60)
        #expect(wrong["data"]?["kind"] == "invalidCredentials", "\(JSONWriter.string(wrong))")
        #expect(wrong["data"]?["attempts"]?.arrayValue?.contains { $0["outcome"] == "unauthorized" } == true)
        // Only the account-hints probe's anonymous NEGOTIATE (a GET, no credential) follows the
        // POST's unauthenticated probe: no AP-REQ went out for the refused password.
        let tokens = acceptor.logEntries().filter { $0["token"] != nil }
        #expect(tokens.allSatisfy { $0["method"] == "GET" && $0["token"] != "kerberos" }, "\(tokens)")

        let skewed = try IntegratedAuthRealm.acceptor(offer: "Negotiate", requireCBT: true, noNTLM: true, skewSeconds: 600)
        let late = try await Self.start(skewed)
        let error = try await late.server.callExpectingError("submitExchangeCredentials", Self.submit(late), timeout: 60)
        #expect(error["data"]?["kind"] == "clockSkew", "\(JSONWriter.string(error))")
        #expect(error["message"]?.stringValue?.contains("KRB_AP_ERR_SKEW") == true)
        #expect(error["data"]?["attempts"]?.arrayValue?.contains { $0["outcome"] == "clockSkew" } == true)
        #expect(late.nothingWritten())
    }
}
