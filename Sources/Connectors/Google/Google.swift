import ConnectorCore
import HTTP
import OAuth
import RPCCore
import WizardContract

/// "Sign in with Google" for a Google Workspace domain: the installed-app flow (loopback
/// redirect, PKCE), the scopes the admin must allow, and the Directory and Calendar tests.
/// Facts: protocols.md §3 (the shared research notes).
public struct Google: OAuthProvider {
    public static let authorizeEndpoint = "https://accounts.google.com/o/oauth2/v2/auth"
    public static let tokenEndpoint = "https://oauth2.googleapis.com/token"
    public static let jwksEndpoint = "https://www.googleapis.com/oauth2/v3/certs"
    public static let issuers: Set<String> = ["https://accounts.google.com", "accounts.google.com"]
    public static let directoryScope = "https://www.googleapis.com/auth/admin.directory.user.readonly"
    public static let calendarScope = "https://www.googleapis.com/auth/calendar"
    public static let requiredScopes = [directoryScope, calendarScope]

    public let clientId: String
    public var system: System { .google }
    public var authorizeEndpoint: String { Self.authorizeEndpoint }
    public var tokenEndpoint: String { Self.tokenEndpoint }
    public var jwksEndpoint: String { Self.jwksEndpoint }

    public init(clientId: String) {
        self.clientId = clientId
    }

    public func authorizationParameters(loginHint: String?) -> [(String, String)] {
        var p = [
            ("response_type", "code"),
            ("scope", (["openid", "email", "profile"] + Self.requiredScopes).joined(separator: " ")),
            ("access_type", "offline"), ("prompt", "consent"),
        ]
        if let loginHint {
            p.append(("login_hint", loginHint))
            if let domain = EmailAddress.domain(of: loginHint) { p.append(("hd", domain)) }
        }
        return p
    }

    public func expectations(nonce: String?) -> IDTokenExpectations {
        IDTokenExpectations(issuer: nil, issuerCheck: { iss, _ in Self.issuers.contains(iss) }, audience: clientId, nonce: nonce)
    }

    public func account(from claims: JSONObject) throws(RPCError) -> JSONObject { Self.account(from: claims) }

    /// The token answer names the granted scopes (or, failing that, the redirect does).
    public func checkGranted(_ tokens: TokenResponse, redirect: [String: String]) throws(RPCError) {
        let missing = Self.missingScopes(granted: tokens.scope ?? redirect["scope"])
        guard missing.isEmpty else { throw Self.scopesError(missing) }
    }

    public func mapError(_ response: OAuthErrorResponse) -> RPCError { error(response) }

    /// The connection test: the Directory's users, then the primary calendar.
    public func test(tokens: AccessTokenSource, http: any HTTPTransport, progress: @escaping ProgressReporter) async -> ([ConnectionCheck], RPCError?) {
        await ConnectionChecks.collect(progress: progress) { checks throws(RPCError) in
            let token = try await tokens.validated { token throws(RPCError) in _ = try await Self.primaryCalendar(token: token, http: http) }
            try await checks.run("directoryUsers", "Listing the domain's users through the Directory API.") { () throws(RPCError) in
                try await Self.listUsers(token: token, http: http)
            }
            try await checks.run("primaryCalendar", "Opening the primary calendar.") { () throws(RPCError) in
                try await Self.primaryCalendar(token: token, http: http)
            }
        }
    }

    public static func account(from claims: JSONObject) -> JSONObject {
        let email = claims["email"]?.stringValue
        var account = JSONObject()
        account.append("email", email.map(JSONValue.string) ?? .null)
        account.append("domain", claims["hd"] ?? email.flatMap(EmailAddress.domain(of:)).map(JSONValue.string) ?? .null)
        account.append("displayName", claims["name"] ?? .null)
        return account
    }

    /// Google's consent screen lets the admin untick permissions: compare with what was granted.
    public static func missingScopes(granted: String?) -> [String] {
        guard let granted else { return [] }
        let have = Set(granted.split(separator: " ").map(String.init))
        return requiredScopes.filter { !have.contains($0) }
    }

    public static func scopesError(_ missing: [String]) -> RPCError {
        RPCError(
            .scopesNotGranted, "Google did not grant every permission the synchronizer needs (\(missing.joined(separator: ", ")) missing).",
            hint: "Sign in with Google again and, on the permissions page, click \"Select all\" before Continue.",
            details: ["missingScopes": .array(missing.map(JSONValue.string))])
    }

    static let trustedAppHint =
        "In the Google Admin console go to Security → Access and data control → API controls → "
        + "Manage Third-Party App Access, and set this client ID to Trusted."

    public func error(_ response: OAuthErrorResponse) -> RPCError {
        let details: JSONObject = ["error": .string(response.error)]
        switch response.error {
        case "admin_policy_enforced":
            return RPCError(
                .appNotTrusted, "Your Google Workspace administrator has not allowed this app (admin_policy_enforced).",
                hint: Self.trustedAppHint + " (client ID \(clientId))", details: details)
        case "org_internal":
            return RPCError(
                .appNotTrusted, "This Google app is internal to another organization (org_internal).",
                hint: "Use a client ID of your own organization (setProviderSettings).", details: details)
        case "access_denied":
            return RPCError(.consentDenied, "The sign-in was declined.", hint: "Sign in again and click \"Select all\" and Continue.", details: details)
        case "invalid_grant":
            return RPCError(.reauthenticationRequired, "The Google sign-in is no longer valid.", hint: "Sign in with Google again.", details: details)
        default:
            return RPCError(.serverError, "Google answered \(response.error)\(response.description.map { ": \($0)" } ?? ".")", details: details)
        }
    }

    static func get(_ url: String, token: String, http: any HTTPTransport) async throws(RPCError) -> (Int, JSONValue?) {
        let (response, json) = try await http.getJSON(url, bearer: token)
        return (response.status, json)
    }

    /// Directory users.list for the admin's own customer, first page.
    public static func listUsers(token: String, http: any HTTPTransport) async throws(RPCError) -> String {
        let (status, json) = try await get(
            "https://admin.googleapis.com/admin/directory/v1/users?customer=my_customer&maxResults=100", token: token, http: http)
        switch status {
        case 200:
            let count = json?["users"]?.arrayValue?.count ?? 0
            return "The Directory lists \(count) user(s) on the first page\(json?["nextPageToken"] != nil ? " (more pages follow)" : "")."
        case 401:
            throw RPCError(.reauthenticationRequired, "Google did not accept the access token.", hint: "Sign in with Google again.")
        case 403:
            let message = json?["error"]?["message"]?.stringValue ?? "Forbidden"
            if message.contains("insufficient") || json?["error"]?["errors"]?.arrayValue?.first?["reason"] == "insufficientPermissions" {
                throw scopesError([directoryScope])
            }
            throw RPCError(
                .insufficientPrivileges, "The signed-in account may not list the domain's users (\(message)).",
                hint: "Sign in with a Google Workspace administrator account.", details: ["status": 403])
        default:
            throw RPCError(.serverError, "Google's Directory API answered HTTP \(status).", details: ["status": .int(status), "responseCode": .null])
        }
    }

    public static func primaryCalendar(token: String, http: any HTTPTransport) async throws(RPCError) -> String {
        let (status, json) = try await get("https://www.googleapis.com/calendar/v3/calendars/primary", token: token, http: http)
        switch status {
        case 200: return "The primary calendar \(json?["summary"]?.stringValue.map { "\"\($0)\" " } ?? "")is reachable."
        case 401: throw RPCError(.reauthenticationRequired, "Google did not accept the access token.", hint: "Sign in with Google again.")
        case 403: throw scopesError([calendarScope])
        default: throw RPCError(.serverError, "Google Calendar answered HTTP \(status).", details: ["status": .int(status), "responseCode": .null])
        }
    }
}
