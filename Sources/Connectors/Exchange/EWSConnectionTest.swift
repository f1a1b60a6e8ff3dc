import ConnectorCore
import HTTP
import WizardProtocol
import XMLTree

/// The Exchange connection test run on "Next": an EWS GetFolder of the calendar with the stored
/// credentials (and impersonation when the profile acts for another mailbox), then the Offline
/// Address Book manifest when an OAB URL is set.
public struct EWSConnectionTest: Sendable {
    /// What exchangelib sends for Exchange 2016, 2019 and Exchange Online; 2013 SP1 servers accept
    /// it as well as older values (an unknown one would give ErrorInvalidServerVersion).
    static let requestServerVersion = "Exchange2013_SP1"

    let client: any HTTPTransport
    let timeoutSeconds: Double
    let pins: @Sendable (String) -> [String]

    public init(client: any HTTPTransport, timeoutSeconds: Double = 20, pins: @escaping @Sendable (String) -> [String] = { _ in [] }) {
        self.client = client
        self.timeoutSeconds = timeoutSeconds
        self.pins = pins
    }

    /// Every check that ran, and the error that stopped the test (nil when all passed).
    public func run(account: ExchangeAccount, ewsUrl: String, oabUrl: String?, progress: ProgressReporter) async -> ([ConnectionCheck], RPCError?) {
        var checks: [ConnectionCheck] = []
        progress("testConnection", "Opening the calendar through EWS at \(ewsUrl).", 10)
        let watch = Stopwatch()
        do {
            let message = try await getCalendarFolder(account: account, ewsUrl: ewsUrl)
            checks.append(ConnectionCheck(name: "ewsCalendar", ok: true, durationMs: watch.elapsedMs, message: message))
        } catch {
            checks.append(ConnectionCheck(name: "ewsCalendar", ok: false, durationMs: watch.elapsedMs, message: error.message))
            return (checks, error)
        }
        if let oabUrl {
            progress("testConnection", "Reading the Offline Address Book manifest.", 60)
            let oabWatch = Stopwatch()
            do {
                let message = try await checkOfflineAddressBook(account: account, oabUrl: oabUrl)
                checks.append(ConnectionCheck(name: "offlineAddressBook", ok: true, durationMs: oabWatch.elapsedMs, message: message))
            } catch {
                checks.append(ConnectionCheck(name: "offlineAddressBook", ok: false, durationMs: oabWatch.elapsedMs, message: error.message))
                return (checks, error)
            }
        }
        return (checks, nil)
    }

    public static func getFolderBody(impersonate: String?) -> [UInt8] {
        let impersonation = impersonate.map {
            """
                <t:ExchangeImpersonation>
                  <t:ConnectingSID><t:PrimarySmtpAddress>\(xmlEscaped($0))</t:PrimarySmtpAddress></t:ConnectingSID>
                </t:ExchangeImpersonation>

            """
        } ?? ""
        return Array("""
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

    func send(_ request: HTTPRequest, account: ExchangeAccount) async throws(RPCError) -> HTTPResponse {
        do {
            return try await ExchangeAuthentication.send(request, account: account, client: client)
        } catch {
            throw error.rpcError
        }
    }

    func getCalendarFolder(account: ExchangeAccount, ewsUrl: String) async throws(RPCError) -> String {
        guard let host = HTTPSURL.host(of: ewsUrl) else {
            throw RPCError(.endpointInvalid, "The EWS URL is not an https URL.", details: ["field": "ewsUrl"])
        }
        var headers = HTTPHeaders()
        headers.add("Content-Type", "text/xml; charset=utf-8")
        if let mailbox = account.impersonateMailbox { headers.add("X-AnchorMailbox", mailbox) }
        let request = HTTPRequest(method: "POST", url: ewsUrl, headers: headers, body: Self.getFolderBody(impersonate: account.impersonateMailbox),
                                  timeoutSeconds: timeoutSeconds, maxResponseBytes: 1 << 20, pinnedCertificateSHA256: pins(host))
        let response = try await send(request, account: account)
        return try Self.interpretGetFolder(response, account: account)
    }

    public static func interpretGetFolder(_ response: HTTPResponse, account: ExchangeAccount) throws(RPCError) -> String {
        switch response.status {
        case 401:
            throw RPCError(.invalidCredentials, "Exchange did not accept the user name and password.", hint: ExchangeHints.userNameForms,
                           details: ["status": 401])
        case 403:
            throw RPCError(.accessDenied, "Exchange refused access to EWS (HTTP 403); EWS may be disabled for this account.",
                           details: ["status": 403, "responseCode": .null])
        case 404, 300...399:
            throw RPCError(.endpointInvalid, "The EWS URL does not lead to Exchange Web Services (HTTP \(response.status)).",
                           hint: "It usually ends in /EWS/Exchange.asmx.", details: ["field": "ewsUrl", "status": .int(response.status)])
        default:
            break
        }
        // Anything but a SOAP envelope: a server failure (5xx) or a URL that is not EWS.
        guard let envelope = try? XMLTreeParser.parse(response.body), envelope.name == "Envelope", let body = envelope.child("Body") else {
            if response.status >= 500 {
                throw RPCError(.serverError, "Exchange answered with HTTP \(response.status).", details: ["status": .int(response.status), "responseCode": .null])
            }
            throw RPCError(.endpointInvalid, "The EWS URL answers with something that is not a SOAP message.",
                           hint: "It usually ends in /EWS/Exchange.asmx.", details: ["field": "ewsUrl", "status": .int(response.status)])
        }
        if let fault = body.child("Fault") {
            let code = fault.first("ResponseCode")?.text ?? fault.child("faultcode")?.text ?? "SOAP fault"
            throw mapResponseCode(code, message: fault.child("faultstring")?.text ?? code, status: response.status, account: account)
        }
        guard let message = body.first("GetFolderResponseMessage") else {
            throw RPCError(.serverError, "Exchange's answer has no GetFolder response.", details: ["status": .int(response.status), "responseCode": .null])
        }
        let code = message.child("ResponseCode")?.text ?? "NoError"
        guard message.attributes["ResponseClass"] == "Success", code == "NoError" else {
            throw mapResponseCode(code, message: message.child("MessageText")?.text ?? code, status: response.status, account: account)
        }
        var description = "The calendar is reachable"
        if let version = envelope.first("ServerVersionInfo") {
            let parts = ["MajorVersion", "MinorVersion", "MajorBuildNumber", "MinorBuildNumber"].compactMap { version.attributes[$0] }
            if !parts.isEmpty { description += " (Exchange \(parts.joined(separator: ".")))" }
        }
        if let mailbox = account.impersonateMailbox { description += ", impersonating \(mailbox)" }
        return description + "."
    }

    static func mapResponseCode(_ code: String, message: String, status: Int, account: ExchangeAccount) -> RPCError {
        let details: JSONObject = ["responseCode": .string(code), "status": .int(status)]
        switch code {
        case "ErrorNonExistentMailbox", "ErrorNonPrimarySmtpAddress":
            let who = account.impersonateMailbox ?? account.email
            return RPCError(.mailboxNotFound, "Exchange has no mailbox \(who) (\(code)).",
                            hint: "Use the mailbox's primary SMTP address.", details: details)
        case "ErrorImpersonateUserDenied", "ErrorImpersonationDenied", "ErrorImpersonationFailed", "ErrorInvalidExchangeImpersonationHeaderData":
            return RPCError(.impersonationDenied, "The account may not act for \(account.impersonateMailbox ?? "that mailbox") (\(code)).",
                            hint: "Give the service account the ApplicationImpersonation role (New-ManagementRoleAssignment -Role ApplicationImpersonation -User <account>).",
                            details: details)
        case "ErrorAccessDenied", "ErrorFolderNotFound":
            return RPCError(.accessDenied, "The account may not open that calendar (\(code)).",
                            hint: "Give the account permission on the calendar, or use impersonation.", details: details)
        default:
            return RPCError(.serverError, "Exchange answered \(code): \(message)", details: details)
        }
    }

    func checkOfflineAddressBook(account: ExchangeAccount, oabUrl: String) async throws(RPCError) -> String {
        let manifest = oabUrl.lowercased().hasSuffix(".xml") ? oabUrl : (oabUrl.hasSuffix("/") ? oabUrl : oabUrl + "/") + "oab.xml"
        guard let host = HTTPSURL.host(of: manifest) else {
            throw RPCError(.endpointInvalid, "The Offline Address Book URL is not an https URL.", details: ["field": "oabUrl"])
        }
        let request = HTTPRequest(method: "GET", url: manifest, timeoutSeconds: timeoutSeconds, maxResponseBytes: 4 << 20,
                                  pinnedCertificateSHA256: pins(host))
        let response = try await send(request, account: account)
        switch response.status {
        case 200:
            guard let root = try? XMLTreeParser.parse(response.body), root.name == "OAB" else {
                throw RPCError(.endpointInvalid, "The Offline Address Book URL answers with something that is not an OAB manifest.",
                               details: ["field": "oabUrl"])
            }
            return "The Offline Address Book manifest lists \(root.children("OAL").count) address list(s)."
        case 401:
            throw RPCError(.invalidCredentials, "The Offline Address Book did not accept the user name and password.",
                           hint: ExchangeHints.userNameForms, details: ["status": 401])
        case 404:
            throw RPCError(.endpointInvalid, "There is no Offline Address Book at that URL (HTTP 404).",
                           hint: "Take the OAB URL from Exchange (Get-OabVirtualDirectory), ending with the OAB's id and a slash.",
                           details: ["field": "oabUrl", "status": 404])
        default:
            throw RPCError(.serverError, "The Offline Address Book answered with HTTP \(response.status).",
                           details: ["status": .int(response.status), "responseCode": .null])
        }
    }
}
