import ConnectorCore
import EWS
import HTTP
import NTLMChallenge
import RPCCore
import WizardContract
import XMLTree

/// The Exchange connection test run on "Next": an EWS GetFolder of the calendar with the stored
/// credentials (and impersonation when the profile acts for another mailbox), then the Offline
/// Address Book manifest when an OAB URL is set.
public struct EWSConnectionTest: Sendable {
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

    func send(_ request: HTTPRequest, account: ExchangeAccount) async throws(RPCError) -> HTTPResponse {
        try await ExchangeAuthentication.sendIntegrated(request, account: account, client: client).response
    }

    func getCalendarFolder(account: ExchangeAccount, ewsUrl: String) async throws(RPCError) -> String {
        guard let host = RequestTarget.httpsHost(of: ewsUrl) else {
            throw RPCError(.endpointInvalid, "The EWS URL is not an https URL.", details: ["field": "ewsUrl"])
        }
        var headers = HTTPHeaders()
        headers.add("Content-Type", "text/xml; charset=utf-8")
        if let mailbox = account.impersonateMailbox { headers.add("X-AnchorMailbox", mailbox) }
        let request = HTTPRequest(
            method: "POST", url: ewsUrl, headers: headers, body: EWS.getFolderBody(impersonate: account.impersonateMailbox),
            timeoutSeconds: timeoutSeconds, maxResponseBytes: 1 << 20, pinnedCertificateSHA256: pins(host))
        let outcome = try await ExchangeAuthentication.sendIntegrated(request, account: account, client: client)
        let message: String
        do {
            message = try EWS.interpretGetFolder(
                outcome.response, mailbox: account.email, impersonating: account.impersonateMailbox,
                credentialsHint: ExchangeHints.userNameForms)
        } catch {
            // The handshake that got the 401 already saw the server's CHALLENGE: it names the domain.
            guard error.kind == .invalidCredentials, let token = outcome.challengeToken,
                let challenge = try? NTLMChallengeInfo.parse(httpToken: token)
            else { throw error }
            let scheme = outcome.scheme == .none ? "ntlm" : outcome.scheme.name
            throw AccountHints.from(challenge, email: account.email, probedUrl: ewsUrl, scheme: scheme, attempts: []).attach(to: error, account: account)
        }
        guard outcome.scheme != .none else { return message }
        let passedOver = outcome.notes.isEmpty ? "" : " (" + outcome.notes.joined(separator: "; ") + ")"
        return message + " Authenticated with \(outcome.scheme.label)\(passedOver)."
    }

    func checkOfflineAddressBook(account: ExchangeAccount, oabUrl: String) async throws(RPCError) -> String {
        let manifest = oabUrl.lowercased().hasSuffix(".xml") ? oabUrl : (oabUrl.hasSuffix("/") ? oabUrl : oabUrl + "/") + "oab.xml"
        guard let host = RequestTarget.httpsHost(of: manifest) else {
            throw RPCError(.endpointInvalid, "The Offline Address Book URL is not an https URL.", details: ["field": "oabUrl"])
        }
        let request = HTTPRequest(
            method: "GET", url: manifest, timeoutSeconds: timeoutSeconds, maxResponseBytes: 4 << 20,
            pinnedCertificateSHA256: pins(host))
        let response = try await send(request, account: account)
        switch response.status {
        case 200:
            guard let root = try? XMLTreeParser.parse(response.body), root.name == "OAB" else {
                throw RPCError(
                    .endpointInvalid, "The Offline Address Book URL answers with something that is not an OAB manifest.",
                    details: ["field": "oabUrl"])
            }
            return "The Offline Address Book manifest lists \(root.children("OAL").count) address list(s)."
        case 401:
            throw RPCError(
                .invalidCredentials, "The Offline Address Book did not accept the user name and password.",
                hint: ExchangeHints.userNameForms, details: ["status": 401])
        case 404:
            throw RPCError(
                .endpointInvalid, "There is no Offline Address Book at that URL (HTTP 404).",
                hint: "Take the OAB URL from Exchange (Get-OabVirtualDirectory), ending with the OAB's id and a slash.",
                details: ["field": "oabUrl", "status": 404])
        default:
            throw RPCError(
                .serverError, "The Offline Address Book answered with HTTP \(response.status).",
                details: ["status": .int(response.status), "responseCode": .null])
        }
    }
}
