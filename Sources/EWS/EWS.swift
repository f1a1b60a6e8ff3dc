import HTTP
import RPCCore
import WizardContract
import XMLTree

/// Exchange Web Services as both calendar connectors speak it: the GetFolder request that proves
/// calendar access, and what Exchange's answer means in the contract's kinds. Exchange on
/// premises sends it with NTLM, Microsoft 365 with a bearer token; the SOAP is the same.
public enum EWS {
    /// What exchangelib sends for Exchange 2016, 2019 and Exchange Online; 2013 SP1 servers accept
    /// it as well as older values (an unknown one would give ErrorInvalidServerVersion).
    public static let requestServerVersion = "Exchange2013_SP1"

    public static func getFolderBody(impersonate: String?) -> [UInt8] {
        let impersonation =
            impersonate.map {
                """
                    <t:ExchangeImpersonation>
                      <t:ConnectingSID><t:PrimarySmtpAddress>\(xmlEscaped($0))</t:PrimarySmtpAddress></t:ConnectingSID>
                    </t:ExchangeImpersonation>

                """
            } ?? ""
        return Array(
            """
            <?xml version="1.0" encoding="utf-8"?>
            <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
                           xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"
                           xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
              <soap:Header>
                <t:RequestServerVersion Version="\(requestServerVersion)"/>
            \(impersonation)  </soap:Header>
              <soap:Body>
                <m:GetFolder>
                  <m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>
                  <m:FolderIds><t:DistinguishedFolderId Id="calendar"/></m:FolderIds>
                </m:GetFolder>
              </soap:Body>
            </soap:Envelope>
            """.utf8)
    }

    /// `mailbox` is the account's own, `impersonating` the one it acts for; `credentialsHint` is
    /// what to say when Exchange refuses the credentials (HTTP 401).
    public static func interpretGetFolder(
        _ response: HTTPResponse, mailbox: String, impersonating: String?,
        credentialsHint: String
    ) throws(RPCError) -> String {
        switch response.status {
        case 401:
            throw RPCError(
                .invalidCredentials, "Exchange did not accept the user name and password.", hint: credentialsHint,
                details: ["status": 401])
        case 403:
            throw RPCError(
                .accessDenied, "Exchange refused access to EWS (HTTP 403); EWS may be disabled for this account.",
                details: ["status": 403, "responseCode": .null])
        case 404, 300...399:
            throw RPCError(
                .endpointInvalid, "The EWS URL does not lead to Exchange Web Services (HTTP \(response.status)).",
                hint: "It usually ends in /EWS/Exchange.asmx.", details: ["field": "ewsUrl", "status": .int(response.status)])
        default:
            break
        }
        // Anything but a SOAP envelope: a server failure (5xx) or a URL that is not EWS.
        guard let envelope = try? XMLTreeParser.parse(response.body), envelope.name == "Envelope", let body = envelope.child("Body") else {
            if response.status >= 500 {
                throw RPCError(
                    .serverError, "Exchange answered with HTTP \(response.status).", details: ["status": .int(response.status), "responseCode": .null])
            }
            throw RPCError(
                .endpointInvalid, "The EWS URL answers with something that is not a SOAP message.",
                hint: "It usually ends in /EWS/Exchange.asmx.", details: ["field": "ewsUrl", "status": .int(response.status)])
        }
        if let fault = body.child("Fault") {
            let code = fault.first("ResponseCode")?.text ?? fault.child("faultcode")?.text ?? "SOAP fault"
            throw mapResponseCode(
                code, message: fault.child("faultstring")?.text ?? code, status: response.status, mailbox: mailbox, impersonating: impersonating)
        }
        guard let message = body.first("GetFolderResponseMessage") else {
            throw RPCError(.serverError, "Exchange's answer has no GetFolder response.", details: ["status": .int(response.status), "responseCode": .null])
        }
        let code = message.child("ResponseCode")?.text ?? "NoError"
        guard message.attributes["ResponseClass"] == "Success", code == "NoError" else {
            throw mapResponseCode(
                code, message: message.child("MessageText")?.text ?? code, status: response.status, mailbox: mailbox, impersonating: impersonating)
        }
        var description = "The calendar is reachable"
        if let version = serverVersion(envelope) { description += " (Exchange \(version.build))" }
        if let impersonating { description += ", impersonating \(impersonating)" }
        return description + "."
    }

    /// The s:Header's ServerVersionInfo: build "15.1.2507.6" and schema version ("V2017_07_11").
    public static func serverVersion(of response: HTTPResponse) -> (build: String, schema: String?)? {
        guard let envelope = try? XMLTreeParser.parse(response.body), envelope.name == "Envelope" else { return nil }
        return serverVersion(envelope)
    }

    static func serverVersion(_ envelope: XMLElement) -> (build: String, schema: String?)? {
        guard let version = envelope.first("ServerVersionInfo") else { return nil }
        let parts = ["MajorVersion", "MinorVersion", "MajorBuildNumber", "MinorBuildNumber"].compactMap { version.attributes[$0] }
        return parts.isEmpty ? nil : (parts.joined(separator: "."), version.attributes["Version"])
    }

    /// Exchange Online's EWS is being retired in favour of Microsoft Graph (protocols.md §2.6):
    /// blocked by default from 1 October 2026, switched off on 1 April 2027.
    public static let exchangeOnlineHost = "outlook.office365.com"
    public static let exchangeOnlineRetirement =
        "Microsoft is retiring EWS in Exchange Online in favour of Microsoft Graph: it is blocked by default from 1 October 2026 and turned off on 1 April 2027."

    static func mapResponseCode(_ code: String, message: String, status: Int, mailbox: String, impersonating: String?) -> RPCError {
        let details: JSONObject = ["responseCode": .string(code), "status": .int(status)]
        switch code {
        case "ErrorNonExistentMailbox", "ErrorNonPrimarySmtpAddress":
            let who = impersonating ?? mailbox
            return RPCError(
                .mailboxNotFound, "Exchange has no mailbox \(who) (\(code)).",
                hint: "Use the mailbox's primary SMTP address.", details: details)
        case "ErrorImpersonateUserDenied", "ErrorImpersonationDenied", "ErrorImpersonationFailed", "ErrorInvalidExchangeImpersonationHeaderData":
            return RPCError(
                .impersonationDenied, "The account may not act for \(impersonating ?? "that mailbox") (\(code)).",
                hint:
                    "Give the service account the ApplicationImpersonation role (New-ManagementRoleAssignment -Role ApplicationImpersonation -User <account>).",
                details: details)
        case "ErrorAccessDenied", "ErrorFolderNotFound":
            return RPCError(
                .accessDenied, "The account may not open that calendar (\(code)).",
                hint: "Give the account permission on the calendar, or use impersonation.", details: details)
        default:
            return RPCError(.serverError, "Exchange answered \(code): \(message)", details: details)
        }
    }
}
