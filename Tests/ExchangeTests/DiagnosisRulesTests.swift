import Testing
import WizardContract

@testable import ExchangeConnector

/// The judgements of the Exchange diagnosis that need no server.
@Suite struct DiagnosisRulesTests {
    @Test func certificateNamesMatchAsRFC6125Says() {
        #expect(ExchangeDiagnosis.name("mail.contoso.com", matches: "mail.contoso.com"))
        #expect(ExchangeDiagnosis.name("MAIL.contoso.com", matches: "mail.contoso.com"))
        #expect(ExchangeDiagnosis.name("*.contoso.com", matches: "mail.contoso.com"))
        #expect(!ExchangeDiagnosis.name("*.contoso.com", matches: "contoso.com"))
        #expect(!ExchangeDiagnosis.name("*.contoso.com", matches: "a.mail.contoso.com"))
        #expect(!ExchangeDiagnosis.name("www.fabrikam.com", matches: "mail.contoso.com"))
    }

    @Test func privateAddressesAreNotTheInternet() {
        for address in ["10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "127.0.0.1", "169.254.1.1", "100.64.0.1", "::1", "fd00::1", "fe80::1"] {
            #expect(ExchangeDiagnosis.isPrivate(address), "\(address)")
        }
        for address in ["8.8.8.8", "172.32.0.1", "52.96.0.1", "2603:1026::1"] {
            #expect(!ExchangeDiagnosis.isPrivate(address), "\(address)")
        }
    }

    static func hints(netbios: String = "CORP", dns: String? = "corp.contoso.com") -> AccountHints {
        AccountHints(
            netbiosDomain: netbios, dnsDomain: dns, forest: dns, server: nil, userNameForms: [], probedUrl: "https://mail.contoso.com/EWS/Exchange.asmx",
            scheme: "ntlm", userNameField: "alice", domainField: netbios, advice: "Type alice and \(netbios).", windowsVersion: nil, attempts: [])
    }

    @Test func theTypedDomainIsComparedWithTheServersOwn() {
        #expect(ExchangeDiagnosis.compare(Self.hints(), userName: "alice", domain: "corp").status == .pass)
        #expect(ExchangeDiagnosis.compare(Self.hints(), userName: "alice", domain: "corp.contoso.com").status == .pass)
        let wrong = ExchangeDiagnosis.compare(Self.hints(), userName: "alice", domain: "CONTOSO")
        #expect(wrong.status == .warn && wrong.kind == .invalidCredentials && wrong.remediation == "Type alice and CORP.")
        #expect(ExchangeDiagnosis.compare(Self.hints(), userName: "alice@corp.contoso.com", domain: nil).status == .pass)
        #expect(ExchangeDiagnosis.compare(Self.hints(), userName: "alice@contoso.com", domain: nil).status == .warn)
        #expect(ExchangeDiagnosis.compare(Self.hints(), userName: "alice", domain: nil).status == .warn)
    }
}
