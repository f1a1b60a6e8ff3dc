import ConnectorCore
import EWS
import HTTP
import OAuth
import RPCCore
import WizardContract

/// "Sign in with Microsoft" for a Microsoft 365 tenant: delegated admin sign-in (authorization
/// code + PKCE, prompt=consent so a Global Administrator can consent for the organization),
/// tenant-wide admin consent, the device code flow, and the Graph (and optional EWS) tests.
/// Facts: protocols.md §2 and §7 (the shared research notes).
public struct Microsoft365: OAuthProvider {
    public static let loginHost = "login.microsoftonline.com"
    public static let graph = "https://graph.microsoft.com"
    public static let outlook = "https://outlook.office365.com"
    public static let defaultEWSURL = "https://outlook.office365.com/EWS/Exchange.asmx"
    /// Delegated Graph permissions requested at sign-in, each with what needs it (Protocol/README
    /// lists them). Directory.Read.All is the least privileged permission that reads the app's
    /// permission grants, which tell consent for the organization from consent for the admin
    /// alone (protocols.md §7.2); it also covers the service principal lookup.
    public static let permissions: [(name: String, neededBy: String)] = [
        ("User.Read.All", "GET /users: the synchronizer maps the directory's users (also covers GET /me)"),
        ("Calendars.ReadWrite", "GET /me/calendar; the synchronizer writes appointments"),
        ("Directory.Read.All", "GET /servicePrincipals and /oauth2PermissionGrants: the organization-consent check"),
    ]
    public static let requiredScopes = permissions.map(\.name)

    /// The Graph calls the checks make, with the delegated permissions that let each through,
    /// least privileged first (the Permissions table of each call's page, protocols.md §7.2).
    public enum GraphCall: Sendable {
        case me, users, myCalendar, servicePrincipals, permissionGrants

        public var permissions: [String] {
            switch self {
            case .me: ["User.Read", "User.ReadBasic.All", "User.Read.All", "Directory.Read.All"]
            case .users: ["User.ReadBasic.All", "User.Read.All", "Directory.Read.All"]
            case .myCalendar: ["Calendars.Read", "Calendars.ReadWrite"]
            case .servicePrincipals: ["Application.Read.All", "Directory.Read.All"]
            case .permissionGrants: ["Directory.Read.All", "DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All"]
            }
        }

        /// The one of them syncwizard requests: what is missing when the call is refused.
        public var requestedPermission: String {
            permissions.first { Microsoft365.requiredScopes.contains($0) } ?? permissions[0]
        }
    }

    public let tenant: String
    public let clientId: String
    public var system: System { .microsoft365 }
    /// Microsoft registers http://localhost and ignores the port.
    public var redirectHost: String { "localhost" }
    public var tokenScope: String? { Self.delegatedScope }

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

    /// `prompt=consent` shows the consent page, where a Global Administrator can tick "Consent on
    /// behalf of your organization"; after a tenant-wide admin consent `select_account` is enough.
    public func authorizationParameters(loginHint: String?) -> [(String, String)] {
        authorizationParameters(loginHint: loginHint, prompt: "consent")
    }

    public func authorizationParameters(loginHint: String?, prompt: String) -> [(String, String)] {
        var p = [
            ("response_type", "code"), ("scope", Self.delegatedScope),
            ("response_mode", "query"), ("prompt", prompt),
        ]
        if let loginHint { p.append(("login_hint", loginHint)) }
        return p
    }

    /// The admin-consent leg grants exactly the delegated permissions the sign-in then requests
    /// (dynamic scopes, so no dependence on what the registration lists; §2.3).
    public func adminConsentParameters() -> [(String, String)] {
        [("client_id", clientId), ("scope", Self.requiredScopes.map { "\(Self.graph)/\($0)" }.joined(separator: " "))]
    }

    /// The first leg of tenant-wide admin consent for the public client (protocols.md §7.3):
    /// `/{tenant}/v2.0/adminconsent` answers `admin_consent=True` and no code.
    public func adminConsentLeg() throws(RPCError) -> ConsentLeg {
        guard tenant.lowercased() != "common" else {
            throw .invalidParams(
                field: "adminConsent", "Admin consent needs the tenant (its id, its domain, or 'organizations'), not 'common': set it with setProviderSettings."
            )
        }
        return ConsentLeg(endpoint: adminConsentEndpoint, parameters: adminConsentParameters()) { answer in
            answer["admin_consent"]?.lowercased() == "true"
                ? nil
                : RPCError(.consentDenied, "The administrator did not grant consent for the organization.", hint: Self.consentHint)
        }
    }

    /// id_tokens name the user's own tenant in iss; with a fixed tenant it must be that one.
    public func expectations(nonce: String?) -> IDTokenExpectations {
        let configured = tenant.lowercased()
        return IDTokenExpectations(
            issuer: nil,
            issuerCheck: { iss, claims in
                guard let tid = claims["tid"]?.stringValue, iss == "https://\(Self.loginHost)/\(tid)/v2.0" else { return false }
                let fixed = !["organizations", "common", "consumers"].contains(configured) && configured.contains("-") && !configured.contains(".")
                return !fixed || tid.lowercased() == configured
            }, audience: clientId, nonce: nonce)
    }

    public func account(from claims: JSONObject) throws(RPCError) -> JSONObject { Self.account(from: claims) }

    public func checkGranted(_ tokens: TokenResponse, redirect: [String: String]) throws(RPCError) {
        let missing = Self.missingScopes(granted: tokens.scope)
        guard missing.isEmpty else {
            throw RPCError(
                .scopesNotGranted, "Microsoft did not grant every permission the synchronizer needs (\(missing.joined(separator: ", ")) missing).",
                hint: "Sign in again as a Global Administrator and accept all requested permissions, ticking \"Consent on behalf of your organization\".",
                details: ["missingScopes": .array(missing.map(JSONValue.string))])
        }
    }

    public func mapError(_ response: OAuthErrorResponse) -> RPCError { Self.error(response) }

    /// The connection test: Graph directory and calendar, the organization-wide consent, and
    /// EWS (with a token for Exchange Online) when an EWS URL was set.
    public func test(
        tokens: AccessTokenSource, ewsUrl: String?, mailbox: String?, http: any HTTPTransport,
        progress: @escaping ProgressReporter
    ) async -> ([ConnectionCheck], RPCError?) {
        await ConnectionChecks.collect(progress: progress) { checks throws(RPCError) in
            // The three Graph checks are independent: they go out at once (each on a pooled or
            // new connection), with the cached token as it is. The first that Graph refuses
            // with 401 says the token was revoked or expired early: once, with a refreshed one.
            // No separate /me probe (a token minted seconds ago is almost always good).
            var outcomes = await Self.graphChecks(token: try await tokens.token(), http: http, consent: self)
            if outcomes.contains(where: \.tokenRejected) {
                outcomes = await Self.graphChecks(token: try await tokens.refreshed(), http: http, consent: self)
            }
            for outcome in outcomes {
                try checks.record(outcome.name, outcome.what, durationMs: outcome.durationMs, outcome.result)
            }
            if let ewsUrl, let mailbox {
                try await checks.run("ewsCalendar", "Opening the calendar through EWS at \(ewsUrl).") { () throws(RPCError) in
                    let outlookToken = try await tokens.token(scope: "\(Self.outlook)/EWS.AccessAsUser.All offline_access")
                    return try await Self.ewsCalendar(ewsUrl: ewsUrl, mailbox: mailbox, token: outlookToken, http: http)
                }
            }
        }
    }

    struct CheckOutcome: Sendable {
        var name: String
        var what: String
        var durationMs: Int
        var result: Result<String, RPCError>

        var tokenRejected: Bool {
            if case .failure(let error) = result { return error.kind == .reauthenticationRequired }
            return false
        }
    }

    /// graphDirectory, graphCalendar and organizationConsent concurrently, reported in that order.
    static func graphChecks(token: String, http: any HTTPTransport, consent: Microsoft365) async -> [CheckOutcome] {
        func timed(_ name: String, _ what: String, _ body: () async throws(RPCError) -> String) async -> CheckOutcome {
            let watch = Stopwatch()
            do throws(RPCError) {
                let message = try await body()
                return CheckOutcome(name: name, what: what, durationMs: watch.elapsedMs, result: .success(message))
            } catch {
                return CheckOutcome(name: name, what: what, durationMs: watch.elapsedMs, result: .failure(error))
            }
        }
        async let directory = timed("graphDirectory", "Reading the directory through Microsoft Graph.") { () throws(RPCError) in
            try await readDirectory(token: token, http: http)
        }
        async let calendar = timed("graphCalendar", "Opening the calendar through Microsoft Graph.") { () throws(RPCError) in
            try await readCalendar(token: token, http: http)
        }
        async let organization = timed("organizationConsent", "Checking the consent covers the whole organization.") { () throws(RPCError) in
            try await consent.checkOrganizationConsent(token: token, http: http)
        }
        return await [directory, calendar, organization]
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
        let have = Set(
            granted.split(separator: " ").map { scope -> String in
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
        // The first line only (Microsoft appends Trace ID, Correlation ID and Timestamp lines),
        // cut by scalar: "\r\n" is one Character, equal to neither "\r" nor "\n".
        let said = response.description.map { text in
            String(String.UnicodeScalarView(text.unicodeScalars.prefix { $0 != "\r" && $0 != "\n" })).clipped(toBytes: 300)
        }
        switch code {
        case 90094?, 90093?, 90095?, 65001?, 900941?:
            return RPCError(
                .adminApprovalRequired, "Microsoft says the app needs admin approval (AADSTS\(code!)).",
                hint: consentHint, details: details)
        case 65004?:
            return RPCError(.consentDenied, "The permissions were declined (AADSTS65004).", hint: "Sign in again and accept.", details: details)
        case 50076?, 50079?:
            return RPCError(
                .mfaRequired, "Microsoft requires multi-factor authentication for this account (AADSTS\(code!)).",
                hint: "Complete the multi-factor prompt in the browser, or ask your administrator about the MFA policy for this app.", details: details)
        case 53003?:
            return RPCError(
                .conditionalAccessBlocked, "A Conditional Access policy of your organization blocked the sign-in (AADSTS53003).",
                hint: "Ask your administrator to allow this app (or this device and location) in Conditional Access.", details: details)
        case 70008?, 700082?, 50173?:
            return RPCError(
                .reauthenticationRequired, "The Microsoft sign-in has expired or was revoked (AADSTS\(code!)).", hint: "Sign in with Microsoft again.",
                details: details)
        default:
            switch response.error {
            case "access_denied":
                return RPCError(
                    .consentDenied, "The sign-in was declined\(said.map { ": \($0)" } ?? ".")", hint: "Sign in again and accept the requested permissions.",
                    details: details)
            case "invalid_grant":
                return RPCError(
                    .reauthenticationRequired, "The Microsoft sign-in is no longer valid\(said.map { ": \($0)" } ?? ".")",
                    hint: "Sign in with Microsoft again.", details: details)
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

    /// GET a Graph resource as JSON with the bearer token; 403 becomes insufficientPrivileges
    /// naming the permission `call` needs.
    public static func graphGET(_ path: String, _ call: GraphCall, token: String, http: any HTTPTransport) async throws(RPCError) -> JSONValue {
        let response: HTTPResponse
        do {
            response = try await http.send(
                HTTPRequest(
                    url: graph + path, headers: ["Accept": "application/json", "Authorization": "Bearer \(token)"],
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
            let resource = path.split(separator: "?").first ?? ""
            throw RPCError(
                .insufficientPrivileges,
                "Microsoft Graph refused \(resource) (HTTP 403): it needs the delegated permission \(call.requestedPermission) (or one of \(call.permissions.joined(separator: ", "))), granted by an administrator, and an account allowed to read it.",
                hint: consentHint,
                details: [
                    "responseCode": json?["error"]?["code"] ?? .null, "missingPermission": .string(call.requestedPermission),
                    "sufficientPermissions": .array(call.permissions.map(JSONValue.string)),
                ])
        default:
            throw RPCError(
                .serverError, "Microsoft Graph answered HTTP \(response.status).",
                details: ["status": .int(response.status), "responseCode": json?["error"]?["code"] ?? .null])
        }
    }

    /// The first page of users: the directory read the synchronizer depends on.
    public static func readDirectory(token: String, http: any HTTPTransport) async throws(RPCError) -> String {
        let json = try await graphGET("/v1.0/users?$top=10&$select=id,userPrincipalName", .users, token: token, http: http)
        let count = json["value"]?.arrayValue?.count ?? 0
        return "Microsoft Graph lists users of the directory (\(count) on the first page)."
    }

    public static func readCalendar(token: String, http: any HTTPTransport) async throws(RPCError) -> String {
        let json = try await graphGET("/v1.0/me/calendar", .myCalendar, token: token, http: http)
        return "The signed-in account's calendar \(json["name"]?.stringValue.map { "\"\($0)\" " } ?? "")is reachable."
    }

    /// Consent for the whole organization: the app's service principal has a delegated grant
    /// with consentType AllPrincipals covering the needed scopes. A grant for one principal means
    /// the admin consented for themselves only ("Consent on behalf of your organization" unticked).
    public func checkOrganizationConsent(token: String, http: any HTTPTransport) async throws(RPCError) -> String {
        let principals = try await Self.graphGET(
            "/v1.0/servicePrincipals?$filter=appId%20eq%20'\(FormEncoding.encode(clientId))'&$select=id", .servicePrincipals, token: token, http: http)
        guard let principalId = principals["value"]?.arrayValue?.first?["id"]?.stringValue else {
            throw RPCError(.organizationConsentMissing, "The app has not been consented to in this organization.", hint: Self.organizationHint)
        }
        let grants = try await Self.graphGET(
            "/v1.0/oauth2PermissionGrants?$filter=clientId%20eq%20'\(FormEncoding.encode(principalId))'", .permissionGrants, token: token, http: http)
        let all = grants["value"]?.arrayValue ?? []
        let organizationWide = all.filter { $0["consentType"]?.stringValue == "AllPrincipals" }
        guard !organizationWide.isEmpty else {
            throw RPCError(
                .organizationConsentMissing, "The permissions were granted for the signing-in administrator only, not for the whole organization.",
                hint: Self.organizationHint, details: ["grants": .int(all.count)])
        }
        let scopes = organizationWide.compactMap { $0["scope"]?.stringValue }.joined(separator: " ")
        let missing = Self.missingScopes(granted: scopes)
        guard missing.isEmpty else {
            throw RPCError(
                .scopesNotGranted, "The organization-wide consent lacks \(missing.joined(separator: ", ")).",
                hint: Self.organizationHint, details: ["missingScopes": .array(missing.map(JSONValue.string))])
        }
        return "The organization has consented to the app for all users."
    }

    static let organizationHint =
        "Sign in with Microsoft again as a Global Administrator and tick \"Consent on behalf of your organization\" before accepting."

    /// Autodiscover v2 (JSON) for the mailbox's EWS URL; Microsoft's default when it does not answer.
    public static func discoverEWS(email: String, http: any HTTPTransport) async -> String {
        let url = outlook + "/autodiscover/autodiscover.json?Email=\(FormEncoding.encode(email))&Protocol=EWS"
        guard let response = try? await http.send(HTTPRequest(url: url, headers: ["Accept": "application/json"], timeoutSeconds: 10, maxResponseBytes: 65536)),
            response.status == 200, let ews = (try? JSONParser.parse(response.body))?["Url"]?.stringValue, HTTPSURL.host(of: ews) != nil
        else {
            return defaultEWSURL
        }
        return ews
    }

    /// EWS GetFolder of the calendar with a bearer token for Exchange Online, anchored to the mailbox.
    public static func ewsCalendar(ewsUrl: String, mailbox: String, token: String, http: any HTTPTransport) async throws(RPCError) -> String {
        var headers: HTTPHeaders = ["Content-Type": "text/xml; charset=utf-8", "Authorization": "Bearer \(token)"]
        headers.add("X-AnchorMailbox", mailbox)
        let response: HTTPResponse
        do {
            response = try await http.send(
                HTTPRequest(
                    method: "POST", url: ewsUrl, headers: headers, body: EWS.getFolderBody(impersonate: nil),
                    timeoutSeconds: 20, maxResponseBytes: 1 << 20))
        } catch {
            throw error.rpcError
        }
        if response.status == 401 {
            throw RPCError(.reauthenticationRequired, "Exchange Online did not accept the access token for EWS.", hint: "Sign in with Microsoft again.")
        }
        return try EWS.interpretGetFolder(response, mailbox: mailbox, impersonating: nil, credentialsHint: "Sign in with Microsoft again.")
    }
}
