import ConnectorCore
import ExchangeConnector
import HTTP
import OAuth
import WizardProtocol

/// "Sign in with Microsoft" for a Microsoft 365 tenant: delegated admin sign-in (authorization
/// code + PKCE, prompt=consent so a Global Administrator can consent for the organization),
/// tenant-wide admin consent, the device code flow, and the Graph (and optional EWS) tests.
/// Facts: ../shared/reference/protocols.md §2.
public struct Microsoft365: Sendable {
    public static let loginHost = "login.microsoftonline.com"
    public static let graph = "https://graph.microsoft.com"
    public static let outlook = "https://outlook.office365.com"
    public static let defaultEWSURL = "https://outlook.office365.com/EWS/Exchange.asmx"
    /// Delegated Graph permissions the synchronizer needs: read the directory's users, and the calendars.
    public static let requiredScopes = ["User.Read.All", "Calendars.ReadWrite"]

    public let tenant: String
    public let clientId: String

    public init(tenant: String?, clientId: String) {
        self.tenant = tenant ?? "organizations"
        self.clientId = clientId
    }

    var base: String { "https://\(Self.loginHost)/\(FormEncoding.encode(tenant))" }
    public var authorizeEndpoint: String { base + "/oauth2/v2.0/authorize" }
    public var tokenEndpoint: String { base + "/oauth2/v2.0/token" }
    public var deviceCodeEndpoint: String { base + "/oauth2/v2.0/devicecode" }
    public var adminConsentEndpoint: String { base + "/v2.0/adminconsent" }
    public var jwksEndpoint: String { base + "/discovery/v2.0/keys" }

    public static var delegatedScope: String {
        (["openid", "profile", "offline_access"] + requiredScopes.map { "\(graph)/\($0)" }).joined(separator: " ")
    }

    public func authorizationParameters(loginHint: String?) -> [(String, String)] {
        var p = [("client_id", clientId), ("response_type", "code"), ("scope", Self.delegatedScope),
                 ("response_mode", "query"), ("prompt", "consent")]
        if let loginHint { p.append(("login_hint", loginHint)) }
        return p
    }

    public func adminConsentParameters() -> [(String, String)] {
        [("client_id", clientId), ("scope", "\(Self.graph)/.default")]
    }

    /// id_tokens name the user's own tenant in iss; with a fixed tenant it must be that one.
    public func expectations(nonce: String?) -> IDTokenExpectations {
        let configured = tenant.lowercased()
        return IDTokenExpectations(issuer: nil, issuerCheck: { iss, claims in
            guard let tid = claims["tid"]?.stringValue, iss == "https://\(Self.loginHost)/\(tid)/v2.0" else { return false }
            let fixed = !["organizations", "common", "consumers"].contains(configured) && configured.contains("-") && !configured.contains(".")
            return !fixed || tid.lowercased() == configured
        }, audience: clientId, nonce: nonce)
    }

    public static func account(from claims: JSONObject) -> JSONObject {
        var account = JSONObject()
        account.append("tenantId", claims["tid"] ?? .null)
        account.append("userPrincipalName", claims["preferred_username"] ?? claims["upn"] ?? claims["email"] ?? .null)
        account.append("displayName", claims["name"] ?? .null)
        account.append("objectId", claims["oid"] ?? .null)
        return account
    }

    /// Granted scopes as Graph permission names ("https://graph.microsoft.com/User.Read.All" → "User.Read.All").
    public static func missingScopes(granted: String?) -> [String] {
        guard let granted else { return [] }
        let prefix = graph.lowercased() + "/"
        let have = Set(granted.split(separator: " ").map { scope -> String in
            let lower = scope.lowercased()
            return lower.hasPrefix(prefix) ? String(lower.dropFirst(prefix.count)) : lower
        })
        return requiredScopes.filter { !have.contains($0.lowercased()) }
    }

    public static let consentHint =
        "Sign in with a Microsoft 365 Global Administrator account and, on the permissions page, tick "
        + "\"Consent on behalf of your organization\" before you click Accept."

    /// Microsoft's errors become the contract's kinds; the AADSTS number decides, not the wording.
    public static func error(_ response: OAuthErrorResponse) -> RPCError {
        let code = response.aadsts
        var details: JSONObject = ["error": .string(response.error)]
        if let code { details["aadsts"] = .int(code) }
        let said = response.description.map { String($0.prefix { $0 != "\r" && $0 != "\n" }) }
        switch code {
        case 90094?, 90093?, 90095?, 65001?, 900941?:
            return RPCError(.adminApprovalRequired, "Microsoft says the app needs admin approval (AADSTS\(code!)).",
                            hint: consentHint, details: details)
        case 65004?:
            return RPCError(.consentDenied, "The permissions were declined (AADSTS65004).", hint: "Sign in again and accept.", details: details)
        case 50076?, 50079?:
            return RPCError(.mfaRequired, "Microsoft requires multi-factor authentication for this account (AADSTS\(code!)).",
                            hint: "Complete the multi-factor prompt in the browser, or ask your administrator about the MFA policy for this app.", details: details)
        case 53003?:
            return RPCError(.conditionalAccessBlocked, "A Conditional Access policy of your organization blocked the sign-in (AADSTS53003).",
                            hint: "Ask your administrator to allow this app (or this device and location) in Conditional Access.", details: details)
        case 70008?, 700082?, 50173?:
            return RPCError(.reauthenticationRequired, "The Microsoft sign-in has expired or was revoked (AADSTS\(code!)).", hint: "Sign in with Microsoft again.", details: details)
        default:
            switch response.error {
            case "access_denied":
                return RPCError(.consentDenied, "The sign-in was declined\(said.map { ": \($0)" } ?? ".")", hint: "Sign in again and accept the requested permissions.", details: details)
            case "invalid_grant":
                return RPCError(.reauthenticationRequired, "The Microsoft sign-in is no longer valid\(said.map { ": \($0)" } ?? ".")", hint: "Sign in with Microsoft again.", details: details)
            case "authorization_declined":
                return RPCError(.consentDenied, "The sign-in was declined on the device page.", details: details)
            case "expired_token":
                return RPCError(.signInTimedOut, "The device code expired before anyone entered it.", hint: "Start the sign-in again.", details: details)
            default:
                return RPCError(.serverError, "Microsoft answered \(response.error)\(said.map { ": \($0)" } ?? ".")", details: details)
            }
        }
    }

    // MARK: - Tests

    /// GET a Graph resource as JSON with the bearer token; 403 becomes insufficientPrivileges.
    public static func graphGET(_ path: String, token: String, http: HTTPClient) async throws(RPCError) -> JSONValue {
        let response: HTTPResponse
        do {
            response = try await http.send(HTTPRequest(url: graph + path, headers: ["Accept": "application/json", "Authorization": "Bearer \(token)"],
                                                       timeoutSeconds: 20, maxResponseBytes: 8 << 20))
        } catch {
            throw error.rpcError
        }
        let json = try? JSONParser.parse(response.body)
        switch response.status {
        case 200: return json ?? .null
        case 401:
            throw RPCError(.reauthenticationRequired, "Microsoft Graph did not accept the access token.", hint: "Sign in with Microsoft again.")
        case 403:
            throw RPCError(.insufficientPrivileges, "The signed-in account may not read \(path.split(separator: "?").first ?? "") through Microsoft Graph (HTTP 403).",
                           hint: consentHint, details: ["responseCode": json?["error"]?["code"] ?? .null])
        default:
            throw RPCError(.serverError, "Microsoft Graph answered HTTP \(response.status).",
                           details: ["status": .int(response.status), "responseCode": json?["error"]?["code"] ?? .null])
        }
    }

    /// The first page of users: the directory read the synchronizer depends on.
    public static func readDirectory(token: String, http: HTTPClient) async throws(RPCError) -> String {
        let json = try await graphGET("/v1.0/users?$top=10&$select=id,userPrincipalName", token: token, http: http)
        let count = json["value"]?.arrayValue?.count ?? 0
        return "Microsoft Graph lists users of the directory (\(count) on the first page)."
    }

    public static func readCalendar(token: String, http: HTTPClient) async throws(RPCError) -> String {
        let json = try await graphGET("/v1.0/me/calendar", token: token, http: http)
        return "The signed-in account's calendar \(json["name"]?.stringValue.map { "\"\($0)\" " } ?? "")is reachable."
    }

    /// Consent for the whole organization: the app's service principal has a delegated grant
    /// with consentType AllPrincipals covering the needed scopes. A grant for one principal means
    /// the admin consented for themselves only ("Consent on behalf of your organization" unticked).
    public func checkOrganizationConsent(token: String, http: HTTPClient) async throws(RPCError) -> String {
        let principals = try await Self.graphGET("/v1.0/servicePrincipals?$filter=appId%20eq%20'\(FormEncoding.encode(clientId))'&$select=id", token: token, http: http)
        guard let principalId = principals["value"]?.arrayValue?.first?["id"]?.stringValue else {
            throw RPCError(.organizationConsentMissing, "The app has not been consented to in this organization.", hint: Self.organizationHint)
        }
        let grants = try await Self.graphGET("/v1.0/oauth2PermissionGrants?$filter=clientId%20eq%20'\(FormEncoding.encode(principalId))'", token: token, http: http)
        let all = grants["value"]?.arrayValue ?? []
        let organizationWide = all.filter { $0["consentType"]?.stringValue == "AllPrincipals" }
        guard !organizationWide.isEmpty else {
            throw RPCError(.organizationConsentMissing, "The permissions were granted for the signing-in administrator only, not for the whole organization.",
                           hint: Self.organizationHint, details: ["grants": .int(all.count)])
        }
        let scopes = organizationWide.compactMap { $0["scope"]?.stringValue }.joined(separator: " ")
        let missing = Self.missingScopes(granted: scopes)
        guard missing.isEmpty else {
            throw RPCError(.scopesNotGranted, "The organization-wide consent lacks \(missing.joined(separator: ", ")).",
                           hint: Self.organizationHint, details: ["missingScopes": .array(missing.map(JSONValue.string))])
        }
        return "The organization has consented to the app for all users."
    }

    static let organizationHint =
        "Sign in with Microsoft again as a Global Administrator and tick \"Consent on behalf of your organization\" before accepting."

    /// Autodiscover v2 (JSON) for the mailbox's EWS URL; Microsoft's default when it does not answer.
    public static func discoverEWS(email: String, http: HTTPClient) async -> String {
        let url = outlook + "/autodiscover/autodiscover.json?Email=\(FormEncoding.encode(email))&Protocol=EWS"
        guard let response = try? await http.send(HTTPRequest(url: url, headers: ["Accept": "application/json"], timeoutSeconds: 10, maxResponseBytes: 65536)),
              response.status == 200, let ews = (try? JSONParser.parse(response.body))?["Url"]?.stringValue, HTTPSURL.host(of: ews) != nil else {
            return defaultEWSURL
        }
        return ews
    }

    /// EWS GetFolder of the calendar with a bearer token for Exchange Online, anchored to the mailbox.
    public static func ewsCalendar(ewsUrl: String, mailbox: String, token: String, http: HTTPClient) async throws(RPCError) -> String {
        var headers: HTTPHeaders = ["Content-Type": "text/xml; charset=utf-8", "Authorization": "Bearer \(token)"]
        headers.add("X-AnchorMailbox", mailbox)
        let response: HTTPResponse
        do {
            response = try await http.send(HTTPRequest(method: "POST", url: ewsUrl, headers: headers, body: EWSConnectionTest.getFolderBody(impersonate: nil),
                                                       timeoutSeconds: 20, maxResponseBytes: 1 << 20))
        } catch {
            throw error.rpcError
        }
        if response.status == 401 {
            throw RPCError(.reauthenticationRequired, "Exchange Online did not accept the access token for EWS.", hint: "Sign in with Microsoft again.")
        }
        let account = ExchangeAccount(userName: mailbox, domain: nil, email: mailbox, password: "")
        return try EWSConnectionTest.interpretGetFolder(response, account: account)
    }
}
