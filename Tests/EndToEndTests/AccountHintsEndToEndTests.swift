import Foundation
import RPCCore
import TestSupport
import Testing
import WizardContract

/// discoverAccountHints and the hints invalidCredentials carries, through the built binary
/// against the fake Exchange, whose NTLM challenges are a domain member server's
/// ([MS-NLMP] §2.2.1.2; Tests/Fixtures/exchange/README.md, `ntlmDomain`). The e-mail domain
/// (contoso.test) is not the Windows domain (CORP / corp.contoso.test), as in many real forests.
@Suite struct AccountHintsEndToEndTests {
    typealias E2E = ExchangeEndToEndTests
    static let corp: JSONValue = ["netbios": "CORP", "dns": "corp.contoso.test", "forest": "contoso.test", "computer": "EXCH01"]

    /// No request carried a credential: no AUTHENTICATE message, no Basic, nobody authenticated.
    static func expectNoCredentialSent(_ fake: FakeExchange) {
        let requests = fake.requests()
        #expect(!requests.isEmpty)
        for r in requests {
            #expect(r["ntlmMessage"] != "authenticate", "\(JSONWriter.string(r))")
            #expect(r["authScheme"] != "Basic" && r["authenticatedUser"] == .null, "\(JSONWriter.string(r))")
        }
        #expect(!fake.stderrText.contains("Passw0rd"))
    }

    @Test func viaAutodiscoverTheChallengeNamesADomainOtherThanTheEmailDomain() async throws {
        let s = try await E2E.setUp(hosts: [
            "contoso.test": ["status": 404],
            "autodiscover.contoso.test": ["ntlmDomain": Self.corp, "autodiscover": E2E.settings],
        ])
        let hints = try await s.server.call("discoverAccountHints", ["email": "alice@contoso.test"], timeout: 30)
        #expect(hints["netbiosDomain"] == "CORP")
        #expect(hints["dnsDomain"] == "corp.contoso.test")
        #expect(hints["forest"] == "contoso.test")
        #expect(hints["server"] == "exch01.corp.contoso.test")
        #expect(hints["userNameForms"] == ["CORP\\alice", "alice@corp.contoso.test"])
        #expect(hints["probedUrl"] == "https://autodiscover.contoso.test/autodiscover/autodiscover.xml")
        #expect(hints["scheme"] == "ntlm")
        #expect(hints["userNameField"] == "alice" && hints["domainField"] == "CORP")
        let advice = try #require(hints["advice"]?.stringValue)
        #expect(advice.contains("type alice as User name and CORP as Domain, or alice@corp.contoso.test with Domain blank"))
        #expect(advice.contains("alice@contoso.test works as a user name only if it is also the account's UPN"))
        let tries = E2E.attempts(hints["attempts"])
        #expect(tries.contains { $0.url == "https://contoso.test/autodiscover/autodiscover.xml" && $0.outcome == "httpStatus" })
        #expect(tries.contains { $0.url == "https://autodiscover.contoso.test/autodiscover/autodiscover.xml" && $0.outcome == "ntlmChallenge" })
        Self.expectNoCredentialSent(s.fake)
        #expect(s.fake.requests(host: "autodiscover.contoso.test").contains { $0["ntlmMessage"] == "negotiate" && $0["status"] == 401 })
    }

    @Test func viaEwsUrlOnANegotiateOnlyServer() async throws {
        let s = try await E2E.setUp(hosts: [
            "mail.contoso.test": ["ntlmDomain": Self.corp, "offerNTLM": false, "ews": [:]]
        ])
        let hints = try await s.server.call(
            "discoverAccountHints", ["email": "alice@contoso.test", "ewsUrl": "https://mail.contoso.test/EWS/Exchange.asmx"], timeout: 30)
        #expect(hints["netbiosDomain"] == "CORP" && hints["dnsDomain"] == "corp.contoso.test")
        #expect(hints["scheme"] == "negotiate")
        #expect(hints["probedUrl"] == "https://mail.contoso.test/EWS/Exchange.asmx")
        // Only the given URL was asked: NTLM first (refused), then the SPNEGO-wrapped NEGOTIATE.
        let asked = s.fake.requests()
        #expect(asked.allSatisfy { $0["host"] == "mail.contoso.test" && $0["path"] == "/EWS/Exchange.asmx" })
        #expect(asked.map { $0["authScheme"] } == ["NTLM", "Negotiate"])
        Self.expectNoCredentialSent(s.fake)
    }

    @Test func theEmailItselfIsAFormWhenItsDomainIsTheDNSDomain() async throws {
        let s = try await E2E.setUp(hosts: [
            "mail.contoso.test": ["ntlmDomain": ["netbios": "CONTOSO", "dns": "contoso.test", "forest": "contoso.test"], "ews": [:]]
        ])
        let hints = try await s.server.call(
            "discoverAccountHints", ["email": "alice@contoso.test", "ewsUrl": "https://mail.contoso.test/EWS/Exchange.asmx"], timeout: 30)
        #expect(hints["userNameForms"] == ["CONTOSO\\alice", "alice@contoso.test"])
        #expect(hints["advice"]?.stringValue?.contains("UPN") == false)
    }

    @Test func basicOnlyEndpointsGiveHintsUnavailable() async throws {
        let s = try await E2E.setUp(hosts: [
            "contoso.test": ["auth": "basic"],
            "autodiscover.contoso.test": ["auth": "basic", "autodiscover": E2E.settings],
        ])
        let error = try await s.server.callExpectingError("discoverAccountHints", ["email": "alice@contoso.test"], timeout: 30)
        #expect(error["data"]?["kind"] == "hintsUnavailable", "\(JSONWriter.string(error))")
        #expect(error["message"]?.stringValue?.contains("NTLM or Negotiate") == true)
        #expect(error["data"]?["hint"] != nil)
        let tries = E2E.attempts(error["data"]?["attempts"])
        #expect(tries.filter { $0.outcome == "noNTLM" }.count == 2, "\(tries)")
        Self.expectNoCredentialSent(s.fake)
    }

    @Test func aNonHTTPSEwsUrlIsEndpointInvalid() async throws {
        let s = try await E2E.setUp(hosts: ["mail.contoso.test": ["ews": [:]]])
        let error = try await s.server.callExpectingError(
            "discoverAccountHints", ["email": "alice@contoso.test", "ewsUrl": "http://mail.contoso.test/EWS/Exchange.asmx"])
        #expect(error["data"]?["kind"] == "endpointInvalid")
        #expect(error["data"]?["field"] == "ewsUrl")
        #expect(s.fake.requests().isEmpty)
    }

    @Test func redirectOutsideTheEmailDomainNeedsConfirmation() async throws {
        let s = try await E2E.setUp(
            hosts: ["mail.fabrikam.test": ["ntlmDomain": Self.corp]],
            httpHosts: ["autodiscover.contoso.test": ["redirect": "https://mail.fabrikam.test/autodiscover/autodiscover.xml"]])
        let error = try await s.server.callExpectingError("discoverAccountHints", ["email": "alice@contoso.test"], timeout: 30)
        #expect(error["data"]?["kind"] == "redirectNeedsConfirmation", "\(JSONWriter.string(error))")
        #expect(error["data"]?["host"] == "mail.fabrikam.test")
        #expect(s.fake.requests(host: "mail.fabrikam.test").isEmpty)
        // Confirmed, the same redirect is followed (over https only) and read.
        let hints = try await s.server.call(
            "discoverAccountHints", ["email": "alice@contoso.test", "allowRedirectHosts": ["mail.fabrikam.test"]], timeout: 30)
        #expect(hints["netbiosDomain"] == "CORP")
        #expect(hints["probedUrl"] == "https://mail.fabrikam.test/autodiscover/autodiscover.xml")
        Self.expectNoCredentialSent(s.fake)
    }

    @Test func invalidCredentialsCarriesTheAccountHintsAndSaysWhatToType() async throws {
        let domain: JSONValue = ["netbios": "CONTOSO", "dns": "corp.contoso.test", "forest": "contoso.test", "computer": "EXCH01"]
        let s = try await E2E.setUp(hosts: [
            "contoso.test": ["status": 404],
            "autodiscover.contoso.test": ["ntlmDomain": domain, "autodiscover": E2E.settings],
            "mail.contoso.test": ["ntlmDomain": domain, "ews": [:]],
        ])
        // The user guessed the domain from the e-mail address: wrong.
        let started = Date()
        let error = try await s.server.callExpectingError("submitExchangeCredentials", E2E.submit(s, domain: "CORP"), timeout: 30)
        #expect(error["data"]?["kind"] == "invalidCredentials", "\(JSONWriter.string(error))")
        let hints = try #require(error["data"]?["accountHints"])
        #expect(hints["netbiosDomain"] == "CONTOSO")
        #expect(hints["userNameForms"] == ["CONTOSO\\alice", "alice@corp.contoso.test"])
        let hint = try #require(error["data"]?["hint"]?.stringValue)
        #expect(hint.contains("type alice as User name and CONTOSO as Domain, or alice@corp.contoso.test with Domain blank"), "\(hint)")
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(!JSONWriter.string(error).contains("Passw0rd"))

        // The connection test (EWS over integrated auth) says the same, from its own handshake.
        _ = try await s.server.call("overrideEndpoints", ["profileId": s.profileId, "ewsUrl": "https://mail.contoso.test/EWS/Exchange.asmx"])
        let test = try await s.server.call("testConnection", ["profileId": s.profileId, "system": "calendar"], timeout: 30)
        let testError = try #require(test["results"]?.arrayValue?.first?["error"])
        #expect(testError["data"]?["kind"] == "invalidCredentials", "\(JSONWriter.string(testError))")
        #expect(testError["data"]?["accountHints"]?["netbiosDomain"] == "CONTOSO")
        #expect(testError["data"]?["accountHints"]?["probedUrl"] == "https://mail.contoso.test/EWS/Exchange.asmx")
        // Read from the CHALLENGE of the handshake that got the 401 (gss-ntlmssp, a test dependency):
        // no extra anonymous GET probe went to the server.
        let ews = s.fake.requests(host: "mail.contoso.test")
        #expect(ews.contains { $0["ntlmMessage"] == "authenticate" } && ews.allSatisfy { $0["method"] == "POST" }, "\(ews)")

        // Typed as the hint says, it works.
        let fixed = try await s.server.call("submitExchangeCredentials", E2E.submit(s, domain: "CONTOSO"), timeout: 30)
        #expect(fixed["autodiscover"]?["ok"] == true)
    }

    @Test func whenTheNameFitsTheDomainTheHintPointsAtThePassword() async throws {
        let s = try await E2E.setUp(hosts: [
            "contoso.test": ["status": 404],
            "autodiscover.contoso.test": ["autodiscover": E2E.settings],
        ])
        let error = try await s.server.callExpectingError("submitExchangeCredentials", E2E.submit(s, password: "Wr0ng!"), timeout: 30)
        #expect(error["data"]?["kind"] == "invalidCredentials")
        #expect(error["data"]?["accountHints"]?["netbiosDomain"] == "CONTOSO")
        #expect(error["data"]?["hint"]?.stringValue?.contains("check the password") == true)
    }
}
