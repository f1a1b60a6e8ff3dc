import ExchangeConnector
import Foundation
import HTTP
import RPCCore
import TestSupport
import Testing
import WizardContract

/// The Exchange connection test in-process against real peers: a throwaway MIT KDC and an HTTPS
/// acceptor (pyspnego + python-gssapi) that checks Kerberos and NTLM with TLS channel binding
/// over real TLS on loopback (mail.contoso.test via CURLOPT_CONNECT_TO, the acceptor's own CA).
@Suite(.serialized) struct IntegratedAuthTests {
    static let ews = "https://mail.contoso.test/EWS/Exchange.asmx"
    /// Where MIT would write a ticket cache if anything used the default one.
    static let defaultCache: String = {
        // Inside the realm's directory, which goes away with the realm.
        let path = ((try? IntegratedAuthRealm.shared.get().directory) ?? "/nonexistent") + "/default-krb5cc"
        setenv("KRB5CCNAME", "FILE:" + path, 1)
        return path
    }()

    static func client(_ acceptor: IntegratedAuthProcess) throws -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.caFile = acceptor.string("caFile")
        configuration.connectTo = ["mail.contoso.test:443:127.0.0.1:\(acceptor.int("httpsPort"))"]
        return try HTTPClient(configuration: configuration)
    }

    static func test(
        _ acceptor: IntegratedAuthProcess, user: String = "alice", domain: String = "CONTOSO",
        email: String = "alice@contoso.test", password: String = "Passw0rd!"
    ) async throws -> ([ConnectionCheck], RPCError?) {
        _ = defaultCache
        let account = ExchangeAccount(userName: user, domain: domain, email: email, password: password)
        return await EWSConnectionTest(client: try client(acceptor)).run(account: account, ewsUrl: ews, oabUrl: nil) { _, _, _ in }
    }

    /// Every authenticated leg the acceptor saw went over the probe's connection.
    static func oneConnection(_ acceptor: IntegratedAuthProcess) -> Bool {
        Set(acceptor.logEntries().compactMap { $0["connection"]?.intValue }).count == 1
    }

    @Test func kerberosWithChannelBindingWhenNTLMIsDisabled() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: "Negotiate", requireCBT: true, noNTLM: true)
        let (checks, error) = try await Self.test(acceptor)
        #expect(error == nil, "\(String(describing: error))")
        #expect(checks.first?.message.contains("Authenticated with Kerberos with channel binding") == true, "\(checks)")
        let ok = acceptor.logEntries().filter { $0["outcome"] == "ok" }
        #expect(ok.first?["protocol"] == "kerberos")
        #expect(ok.first?["user"]?.stringValue == "alice@CONTOSO.TEST")
        #expect(Self.oneConnection(acceptor))
        // The ticket lived in a MEMORY: cache: nothing at KRB5CCNAME or in /tmp.
        #expect(!FileManager.default.fileExists(atPath: Self.defaultCache))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/krb5cc_\(getuid())"))
    }

    @Test func ntlmWithChannelBindingWorksWhereTheAcceptorRequiresIt() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: "NTLM", requireCBT: true)
        let (checks, error) = try await Self.test(acceptor)
        #expect(error == nil, "\(String(describing: error))")
        #expect(checks.first?.message.contains("Authenticated with NTLM with channel binding") == true, "\(checks)")
        let entries = acceptor.logEntries()
        #expect(entries.compactMap { $0["token"]?.stringValue } == ["ntlm-negotiate", "ntlm-authenticate"])
        #expect(entries.last?["outcome"] == "ok")
        #expect(Self.oneConnection(acceptor))
    }

    /// The acceptor really checks: libcurl's NTLM (no MsvAvChannelBindings) is refused by it.
    @Test func acceptorRefusesNTLMWithoutChannelBinding() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: "NTLM", requireCBT: true)
        let response = try await Self.client(acceptor).send(
            HTTPRequest(
                method: "POST", url: Self.ews, body: Array("<x/>".utf8),
                authentication: .ntlm(user: "alice", domain: "CONTOSO", password: "Passw0rd!")))
        #expect(response.status == 401)
        let refused = acceptor.logEntries().filter { $0["outcome"] == "refused" }
        #expect(refused.first?["error"]?.stringValue?.contains("BadBindings") == true, "\(acceptor.logEntries())")
    }

    @Test func wrongPasswordIsInvalidCredentialsFromTheKDC() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(requireCBT: true)
        let (_, error) = try await Self.test(acceptor, password: "wrong")
        #expect(error?.kind == .invalidCredentials)
        #expect(error?.details["reason"] == "kerberosRefused", "\(String(describing: error))")
        #expect(acceptor.logEntries().allSatisfy { $0["outcome"] != "ok" })
    }

    @Test func clockSkewIsNamedKRBAPERRSKEW() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: "Negotiate", requireCBT: true, noNTLM: true, skewSeconds: 600)
        let (_, error) = try await Self.test(acceptor)
        #expect(error?.kind == .clockSkew, "\(String(describing: error))")
        #expect(error?.message.contains("KRB_AP_ERR_SKEW") == true, "\(String(describing: error))")
        #expect(error?.message.contains("5 minutes") == true, "\(String(describing: error))")
        #expect(error?.hint?.contains("time source") == true, "\(String(describing: error?.hint))")
        // The acceptor (MIT) refused with KRB_AP_ERR_SKEW and sent the KRB-ERROR back, which
        // MIT on this side decoded.
        #expect(
            acceptor.logEntries().contains { $0["error"]?.stringValue?.contains("Clock skew too great") == true && $0["errorToken"] == true },
            "\(acceptor.logEntries())")
        #expect(error?.hint?.contains("Clock skew too great") == true, "\(String(describing: error?.hint))")
    }

    @Test func kdcDownFallsBackToNTLMWithChannelBinding() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(requireCBT: true)
        // DOWN.TEST's KDC (in the realm's krb5.conf) is a closed port.
        let (checks, error) = try await Self.test(acceptor, user: "bob", domain: "DOWN", email: "bob@down.test", password: "Secr3t!!")
        #expect(error == nil, "\(String(describing: error))")
        let message = checks.first?.message ?? ""
        #expect(message.contains("Authenticated with NTLM with channel binding"), "\(message)")
        #expect(message.contains("Kerberos: Cannot contact any KDC"), "\(message)")
    }

    /// A UPN with the domain left blank goes out as the user name with an empty NTLM domain.
    @Test func upnWithBlankDomainOverNTLMWithChannelBinding() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: "NTLM", requireCBT: true, ntlmUsers: [":alice@contoso.test:Passw0rd!"])
        let account = ExchangeAccount(userName: "alice@contoso.test", domain: nil, email: "alice@contoso.test", password: "Passw0rd!")
        let (checks, error) = await EWSConnectionTest(client: try Self.client(acceptor)).run(account: account, ewsUrl: Self.ews, oabUrl: nil) { _, _, _ in }
        #expect(error == nil, "\(String(describing: error)) \(acceptor.logEntries())")
        #expect(checks.first?.message.contains("NTLM with channel binding") == true)
    }

    /// The KDC's log lines for one principal's AS exchanges (password → TGT) and TGS exchanges
    /// (TGT → HTTP/<host> ticket).
    static func kdcRequests(_ kind: String, principal: String) throws -> Int {
        let log = try IntegratedAuthRealm.shared.get().string("kdcLog")
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.contains(kind) && $0.contains(principal + " for ") }.count
    }

    /// One ticket per principal and password for the process: the second connection test asks
    /// the KDC nothing (neither the TGT nor the service ticket again); a different password is
    /// never answered from the cached ticket: the KDC is asked and refuses it; the right
    /// password after that gets a fresh ticket.
    @Test func kerberosTicketIsCachedPerPrincipalAndPassword() async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: "Negotiate", requireCBT: true, noNTLM: true)
        let bob = "bob@CONTOSO.TEST"
        let asBefore = try Self.kdcRequests("AS_REQ", principal: bob)
        let (_, first) = try await Self.test(acceptor, user: "bob", email: "bob@contoso.test", password: "Secr3t!!")
        #expect(first == nil, "\(String(describing: first))")
        let asFirst = try Self.kdcRequests("AS_REQ", principal: bob)
        let tgsFirst = try Self.kdcRequests("TGS_REQ", principal: bob)
        #expect(asFirst > asBefore && tgsFirst > 0, "the KDC log shows no exchange for \(bob)")

        let (checks, second) = try await Self.test(acceptor, user: "bob", email: "bob@contoso.test", password: "Secr3t!!")
        #expect(second == nil, "\(String(describing: second))")
        #expect(checks.first?.message.contains("Kerberos with channel binding") == true)
        #expect(try Self.kdcRequests("AS_REQ", principal: bob) == asFirst)
        #expect(try Self.kdcRequests("TGS_REQ", principal: bob) == tgsFirst)

        let (_, wrong) = try await Self.test(acceptor, user: "bob", email: "bob@contoso.test", password: "not-it")
        #expect(wrong?.kind == .invalidCredentials, "\(String(describing: wrong))")
        let asWrong = try Self.kdcRequests("AS_REQ", principal: bob)
        #expect(asWrong > asFirst)

        let (_, again) = try await Self.test(acceptor, user: "bob", email: "bob@contoso.test", password: "Secr3t!!")
        #expect(again == nil, "\(String(describing: again))")
        #expect(try Self.kdcRequests("AS_REQ", principal: bob) > asWrong)
        #expect(acceptor.logEntries().filter { $0["outcome"] == "ok" }.count == 3)
    }

    /// A pinned server (its certificate trusted by its SHA-256, not by a CA) still gets the
    /// channel binding: the pinned connection reports its leaf like a verified one, and the
    /// handshake's legs stay on it. NTLM where the acceptor requires the binding, and Kerberos
    /// with NTLM disabled.
    @Test(arguments: [("NTLM", false, "NTLM with channel binding"), ("Negotiate", true, "Kerberos with channel binding")])
    func pinnedServerGetsChannelBindingToo(_ offer: String, _ noNTLM: Bool, _ expected: String) async throws {
        let acceptor = try IntegratedAuthRealm.acceptor(offer: offer, requireCBT: true, noNTLM: noNTLM)
        var configuration = HTTPClient.Configuration()
        configuration.connectTo = ["mail.contoso.test:443:127.0.0.1:\(acceptor.int("httpsPort"))"]
        let client = try HTTPClient(configuration: configuration) // no CA for the acceptor: only the pin trusts it
        let pin = acceptor.string("certSha256")
        let account = ExchangeAccount(userName: "alice", domain: "CONTOSO", email: "alice@contoso.test", password: "Passw0rd!")
        let (checks, error) = await EWSConnectionTest(client: client, pins: { _ in [pin] }).run(account: account, ewsUrl: Self.ews, oabUrl: nil) { _, _, _ in }
        #expect(error == nil, "\(String(describing: error)) \(acceptor.logEntries())")
        #expect(checks.first?.message.contains("Authenticated with \(expected)") == true, "\(checks)")
        #expect(Self.oneConnection(acceptor), "\(acceptor.logEntries())")
    }
}
