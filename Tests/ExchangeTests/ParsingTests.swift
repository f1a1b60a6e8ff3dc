import EWS
import HTTP
import RPCCore
import Testing
import WizardContract
import XMLTree

@testable import ExchangeConnector

@Suite struct XMLTreeTests {
    @Test func resolvesNamespacesAndDecodesEntities() throws {
        let root = try XMLTreeParser.parse(
            #"""
            <?xml version="1.0"?><a:Root xmlns:a="urn:a" xmlns="urn:default"><Child k="1 &amp; 2">x &lt; y<![CDATA[ <raw> ]]>&#233;</Child><!-- note --><a:Empty/></a:Root>
            """#)
        #expect(root.name == "Root" && root.namespace == "urn:a")
        let child = try #require(root.child("Child"))
        #expect(child.namespace == "urn:default")
        #expect(child.attributes["k"] == "1 & 2")
        #expect(child.text == "x < y <raw> é")
        #expect(root.child("Empty")?.namespace == "urn:a")
    }

    @Test(arguments: [
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>",
        "<x>&unknown;</x>", "<x><y></x>", "<x a=1/>", "<p:x/>", "<x></x><y/>", "", "<x>",
        "<x a=\"<\"/>", "<x>&#0;</x>", "<x>&#+65;</x>", "<x>&#x+41;</x>", "<x>&#x-0;</x>", "<x>&#;</x>",
    ])
    func rejectsWhatIsNotPlainXML(_ text: String) {
        #expect(throws: XMLParseError.self) { try XMLTreeParser.parse(text) }
    }

    @Test func boundsDepth() {
        let deep = String(repeating: "<a>", count: 500) + String(repeating: "</a>", count: 500)
        #expect(throws: XMLParseError.self) { try XMLTreeParser.parse(deep) }
    }
}

@Suite struct POXTests {
    func answer(_ account: String) -> [UInt8] {
        Array(
            """
            <?xml version="1.0" encoding="utf-8"?>
            <Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
              <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
                <User><DisplayName>Alice</DisplayName></User>
                <Account>\(account)</Account>
              </Response>
            </Autodiscover>
            """.utf8)
    }

    @Test func prefersEXPROverEXCHAndEwsUrlOverASUrl() {
        let body = answer(
            """
            <AccountType>email</AccountType><Action>settings</Action>
            <Protocol><Type>EXCH</Type><ASUrl>https://internal.contoso.test/EWS/Exchange.asmx</ASUrl></Protocol>
            <Protocol><Type>EXPR</Type><ASUrl>https://as.contoso.test/EWS/Exchange.asmx</ASUrl><EwsUrl>https://mail.contoso.test/EWS/Exchange.asmx</EwsUrl><OABUrl>https://mail.contoso.test/OAB/1/</OABUrl></Protocol>
            """)
        #expect(POX.parse(body) == .success(.settings(ewsUrl: "https://mail.contoso.test/EWS/Exchange.asmx", oabUrl: "https://mail.contoso.test/OAB/1/")))
    }

    @Test func ignoresPlainHTTPURLs() {
        let body = answer(
            """
            <Action>settings</Action>
            <Protocol><Type>EXPR</Type><EwsUrl>http://mail.contoso.test/EWS/Exchange.asmx</EwsUrl></Protocol>
            <Protocol><Type>EXCH</Type><EwsUrl>https://int.contoso.test/EWS/Exchange.asmx</EwsUrl><OABUrl>http://int.contoso.test/OAB/</OABUrl></Protocol>
            """)
        #expect(POX.parse(body) == .success(.settings(ewsUrl: "https://int.contoso.test/EWS/Exchange.asmx", oabUrl: nil)))
    }

    @Test func readsRedirectsAndErrors() {
        #expect(
            POX.parse(answer("<Action>redirectAddr</Action><RedirectAddr>bob@fabrikam.test</RedirectAddr>")) == .success(.redirectAddr("bob@fabrikam.test")))
        #expect(
            POX.parse(answer("<Action>redirectUrl</Action><RedirectUrl>https://x.contoso.test/autodiscover/autodiscover.xml</RedirectUrl>"))
                == .success(.redirectUrl("https://x.contoso.test/autodiscover/autodiscover.xml")))
        let error = Array(
            """
            <Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response>
            <Error Time="1" Id="2"><ErrorCode>500</ErrorCode><Message>The e-mail address cannot be found.</Message></Error></Response></Autodiscover>
            """.utf8)
        #expect(POX.parse(error) == .success(.error(code: "500", message: "The e-mail address cannot be found.")))
    }

    @Test func requestEscapesTheAddress() {
        let body = String(decoding: POX.requestBody(email: "a&b<c>@contoso.test"), as: UTF8.self)
        #expect(body.contains("<EMailAddress>a&amp;b&lt;c&gt;@contoso.test</EMailAddress>"))
        #expect(body.contains("outlook/responseschema/2006a"))
    }
}

@Suite struct GetFolderInterpretationTests {
    let account = ExchangeAccount(userName: "alice", domain: "CONTOSO", email: "alice@contoso.test", password: "pw", impersonateMailbox: "bob@contoso.test")

    func response(_ status: Int, _ body: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: [:], body: Array(body.utf8), effectiveURL: "https://mail.contoso.test/EWS/Exchange.asmx", durationMs: 1)
    }

    func soap(_ inner: String) -> String {
        """
        <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" MinorBuildNumber="6" xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types"/></s:Header>
        <s:Body><m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages>\(inner)</m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>
        """
    }

    @Test func successNamesTheServerVersion() throws {
        let message = try EWS.interpretGetFolder(
            response(200, soap(#"<m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode></m:GetFolderResponseMessage>"#)),
            mailbox: account.email, impersonating: account.impersonateMailbox, credentialsHint: ExchangeHints.userNameForms)
        #expect(message.contains("15.1.2507.6"))
        #expect(message.contains("impersonating bob@contoso.test"))
    }

    @Test(arguments: [
        ("ErrorNonExistentMailbox", "mailboxNotFound"), ("ErrorImpersonateUserDenied", "impersonationDenied"),
        ("ErrorAccessDenied", "accessDenied"), ("ErrorServerBusy", "serverError"),
    ])
    func responseCodesMapToKinds(_ code: String, _ kind: String) {
        let body = soap(
            #"<m:GetFolderResponseMessage ResponseClass="Error"><m:MessageText>no</m:MessageText><m:ResponseCode>\#(code)</m:ResponseCode></m:GetFolderResponseMessage>"#
        )
        let error = #expect(throws: RPCError.self) {
            try EWS.interpretGetFolder(
                response(200, body), mailbox: account.email, impersonating: account.impersonateMailbox, credentialsHint: ExchangeHints.userNameForms)
        }
        #expect(error?.kind.name == kind)
        #expect(error?.data["responseCode"] == .string(code))
    }

    @Test func soapFaultsAndHTTPStatusesMap() {
        let fault = """
            <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>The specified server version is invalid.</faultstring>
            <detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorInvalidServerVersion</e:ResponseCode></detail></s:Fault></s:Body></s:Envelope>
            """
        let e1 = #expect(throws: RPCError.self) {
            try EWS.interpretGetFolder(
                response(500, fault), mailbox: account.email, impersonating: account.impersonateMailbox, credentialsHint: ExchangeHints.userNameForms)
        }
        #expect(e1?.kind == .serverError)
        #expect(e1?.data["responseCode"] == "ErrorInvalidServerVersion")
        let e2 = #expect(throws: RPCError.self) {
            try EWS.interpretGetFolder(
                response(401, ""), mailbox: account.email, impersonating: account.impersonateMailbox, credentialsHint: ExchangeHints.userNameForms)
        }
        #expect(e2?.kind == .invalidCredentials)
        #expect(e2?.hint?.contains("CONTOSO") == true)
        let e3 = #expect(throws: RPCError.self) {
            try EWS.interpretGetFolder(
                response(200, "<html>OWA</html>"), mailbox: account.email, impersonating: account.impersonateMailbox,
                credentialsHint: ExchangeHints.userNameForms)
        }
        #expect(e3?.kind == .endpointInvalid)
        let e4 = #expect(throws: RPCError.self) {
            try EWS.interpretGetFolder(
                response(503, "busy"), mailbox: account.email, impersonating: account.impersonateMailbox, credentialsHint: ExchangeHints.userNameForms)
        }
        #expect(e4?.kind == .serverError)
    }

    @Test func impersonationHeaderOnlyWhenActingForSomeone() {
        let with = String(decoding: EWS.getFolderBody(impersonate: "bob@contoso.test"), as: UTF8.self)
        #expect(with.contains("<t:PrimarySmtpAddress>bob@contoso.test</t:PrimarySmtpAddress>"))
        #expect(with.contains(#"<t:DistinguishedFolderId Id="calendar"/>"#))
        let without = String(decoding: EWS.getFolderBody(impersonate: nil), as: UTF8.self)
        #expect(!without.contains("ExchangeImpersonation"))
        #expect((try? XMLTreeParser.parse(without)) != nil)
    }
}

/// Regressions from fuzzing: Swift Characters can hide a delimiter behind a combining mark.
@Suite struct GraphemeRegressionTests {
    @Test func escapingWorksByScalarNotCharacter() throws {
        let hostile = "a<\u{200C}x/>\u{200C}@contoso.com <\u{316} &\u{301}"
        let escaped = xmlEscaped(hostile)
        #expect(!escaped.unicodeScalars.contains("<") && !escaped.unicodeScalars.contains(">"))
        _ = try XMLTreeParser.parse("<r>\(escaped)</r>")
    }

    @Test func errorsQuoteClientTextBoundedInBytes() {
        let huge = "x" + String(repeating: "\u{301}", count: 100_000)
        #expect(huge.clipped(toBytes: 64).utf8.count <= 64)
        #expect("short".clipped(toBytes: 64) == "short")
    }
}
