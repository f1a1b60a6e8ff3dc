import ConnectorCore
import HTTP
import OAuth
import RPCCore
import WizardContract

/// SuperOffice CRM Online: the SuperID sign-in's data (an `OAuthProvider`) and the connection
/// test. Endpoints and claim names: protocols.md §1 (the shared research notes).
public struct SuperOffice: OAuthProvider {
    /// Environment → authentication host. Configurable (--superoffice-host), because SuperOffice's
    /// own documents disagree on the stage host (qaonline vs stage).
    public static let defaultHosts: [SuperOfficeEnvironment: String] = [
        .sod: "sod.superoffice.com",
        .stage: "qaonline.superoffice.com",
        .online: "online.superoffice.com",
    ]
    static let claimPrefix = "http://schemes.superoffice.net/identity/"

    public let environment: SuperOfficeEnvironment
    public let host: String
    public let clientId: String
    public var system: System { .superOffice }
    public var issuer: String { "https://\(host)" }
    public var authorizeEndpoint: String { "https://\(host)/login/common/oauth/authorize" }
    public var tokenEndpoint: String { "https://\(host)/login/common/oauth/tokens" }
    public var jwksEndpoint: String { "https://\(host)/login/.well-known/jwks" }
    public func stateEndpoint(context: String) -> String { "https://\(host)/api/state/\(FormEncoding.encode(context))" }

    public init(environment: SuperOfficeEnvironment, hosts: [SuperOfficeEnvironment: String] = SuperOffice.defaultHosts, clientId: String = "") {
        self.environment = environment
        host = hosts[environment] ?? Self.defaultHosts[environment]!
        self.clientId = clientId
    }

    public func authorizationParameters(loginHint: String?) -> [(String, String)] {
        var p = [("response_type", "code"), ("scope", "openid")]
        if let loginHint { p.append(("login_hint", loginHint)) }
        return p
    }

    public func expectations(nonce: String?) -> IDTokenExpectations {
        IDTokenExpectations(issuer: issuer, audience: clientId, nonce: nonce)
    }

    public func account(from claims: JSONObject) throws(RPCError) -> JSONObject {
        try Self.account(from: claims, environment: environment)
    }

    public func mapError(_ response: OAuthErrorResponse) -> RPCError {
        response.error == "invalid_grant"
            ? RPCError(
                .reauthenticationRequired, "SuperOffice no longer accepts the sign-in (\(response.description ?? "invalid_grant")).",
                hint: "Sign in with SuperOffice again.", details: ["error": "invalid_grant"])
            : OAuthErrors.standard(response)
    }

    /// The connection test: the State API (is the tenant running, where is its API), then
    /// currentPrincipal with the access token (refreshed once if SuperOffice rejects it).
    public func test(
        context: String, tokens: AccessTokenSource, http: any HTTPTransport,
        progress: @escaping ProgressReporter
    ) async -> ([ConnectionCheck], RPCError?) {
        await ConnectionChecks.collect(progress: progress) { checks throws(RPCError) in
            var apiBase = ""
            try await checks.run("tenantState", "Asking SuperOffice whether tenant \(context) is running.", percent: 10) { () throws(RPCError) in
                let (api, state) = try await tenantState(context: context, http: http)
                apiBase = api
                return "Tenant \(context) is \(state)."
            }
            try await checks.run("currentPrincipal", "Calling the SuperOffice API as the signed-in user.", percent: 50) { () throws(RPCError) in
                try await tokens.retryingOnRejection { token throws(RPCError) in
                    try await Self.currentPrincipal(apiBase: apiBase, accessToken: token, http: http)
                }
            }
        }
    }

    /// The account as the wizard shows it, from the id_token's SuperOffice claims.
    public static func account(from claims: JSONObject, environment: SuperOfficeEnvironment) throws(RPCError) -> JSONObject {
        func claim(_ name: String) -> String? { claims[claimPrefix + name]?.stringValue }
        guard let context = claim("ctx"), !context.isEmpty else {
            throw RPCError(.invalidToken, "The SuperOffice id_token names no tenant (ctx claim).")
        }
        var account = JSONObject()
        account.append("contextIdentifier", .string(context))
        account.append("webApiUrl", claim("webapi_url").map(JSONValue.string) ?? .null)
        account.append("netServerUrl", claim("netserver_url").map(JSONValue.string) ?? .null)
        account.append("userName", (claim("upn") ?? claim("email") ?? claims["sub"]?.stringValue).map(JSONValue.string) ?? .null)
        account.append("email", (claim("email") ?? claim("so_primary_email_address")).map(JSONValue.string) ?? .null)
        account.append("isAdministrator", .bool(claim("is_administrator")?.lowercased() == "true"))
        account.append("environment", .string(environment.rawValue))
        return account
    }

    /// The State API: is the tenant running, and where does its API live now?
    /// Returns the API base (ending in /api/).
    public func tenantState(context: String, http: any HTTPTransport) async throws(RPCError) -> (apiBase: String, state: String) {
        let response: HTTPResponse
        do {
            response = try await http.send(
                HTTPRequest(
                    url: stateEndpoint(context: context), headers: ["Accept": "application/json"],
                    timeoutSeconds: 20, maxResponseBytes: 1 << 20))
        } catch {
            throw error.rpcError
        }
        guard response.status == 200, let json = try? JSONParser.parse(response.body) else {
            throw RPCError(
                .serverError, "SuperOffice's State API answered with HTTP \(response.status).",
                details: ["status": .int(response.status), "responseCode": .null])
        }
        let state = json["State"]?.stringValue ?? "Unknown"
        guard json["IsRunning"]?.boolValue == true else {
            throw RPCError(
                .tenantNotRunning, "The SuperOffice tenant \(context) is not running (state \(state)).",
                hint: "Ask your SuperOffice administrator; the tenant may be suspended or in maintenance.",
                details: ["state": .string(state)])
        }
        var api = json["Api"]?.stringValue ?? (json["Endpoint"]?.stringValue.map { $0 + "/api" } ?? "")
        guard HTTPSURL.host(of: api) != nil else {
            throw RPCError(.serverError, "SuperOffice's State API named no usable API address.", details: ["status": 200, "responseCode": .null])
        }
        if !api.hasSuffix("/") { api += "/" }
        return (api, state)
    }

    /// GET {api}v1/User/currentPrincipal with the bearer token: proves the token works against
    /// the tenant. Returns who it is.
    public static func currentPrincipal(apiBase: String, accessToken: String, http: any HTTPTransport) async throws(RPCError) -> String {
        let response: HTTPResponse
        do {
            response = try await http.send(
                HTTPRequest(
                    url: apiBase + "v1/User/currentPrincipal",
                    headers: ["Accept": "application/json", "Authorization": "Bearer \(accessToken)"],
                    timeoutSeconds: 20, maxResponseBytes: 4 << 20))
        } catch {
            throw error.rpcError
        }
        switch response.status {
        case 200:
            let json = try? JSONParser.parse(response.body)
            let name = json?["FullName"]?.stringValue ?? json?["UserName"]?.stringValue ?? "the signed-in user"
            return "Signed in to the tenant as \(name)."
        case 401:
            throw RPCError(.reauthenticationRequired, "SuperOffice did not accept the access token.", hint: "Sign in with SuperOffice again.")
        case 421:
            throw RPCError(
                .serverError, "SuperOffice says the API host is wrong for this tenant (HTTP 421).",
                details: ["status": 421, "responseCode": .null])
        default:
            throw RPCError(
                .serverError, "SuperOffice's API answered with HTTP \(response.status).",
                details: ["status": .int(response.status), "responseCode": .null])
        }
    }
}
