import ConnectorCore
import Foundation
import GoogleConnector
import HTTP
import Microsoft365Connector
import OAuth
import RPCCore
import SuperOfficeConnector
import Synchronization
import TestSupport
import Testing
import WizardContract

/// Connectors in-process, each against a FakeTransport that answers like the vendor's
/// documented API: no binary, no TLS, no server process.
@Suite struct ConnectorTests {
    static let noProgress: ProgressReporter = { _, _, _ in }

    /// Tokens handed out in order; `forgets` counts how often a rejected one was dropped.
    final class Tokens: Sendable {
        let values: [String]
        let handedOut = Mutex(0)
        let forgets = Mutex(0)
        init(_ values: [String]) { self.values = values }
        var source: AccessTokenSource {
            AccessTokenSource(
                fetch: { [self] scope, _ in
                    handedOut.withLock { n in
                        defer { n += 1 }
                        return scope.map { "for \($0)" } ?? values[min(n, values.count - 1)]
                    }
                }, forget: { [self] in forgets.withLock { $0 += 1 } })
        }
    }

    // MARK: Microsoft 365

    /// Graph as protocols.md §7.2 describes it: each call needs one of its permissions.
    static func graph(scopes: Set<String>, consentType: String = "AllPrincipals") -> FakeTransport {
        FakeTransport { request in
            let target = FakeTransport.target(request)
            let path = String(target.prefix { $0 != "?" })
            let needs: [String] =
                switch path {
                case "/v1.0/me": ["User.Read", "User.Read.All", "Directory.Read.All"]
                case "/v1.0/users": ["User.ReadBasic.All", "User.Read.All", "Directory.Read.All"]
                case "/v1.0/me/calendar": ["Calendars.Read", "Calendars.ReadWrite"]
                case "/v1.0/servicePrincipals": ["Application.Read.All", "Directory.Read.All"]
                case "/v1.0/oauth2PermissionGrants": ["Directory.Read.All"]
                default: []
                }
            guard FakeTransport.bearer(request) != nil else { return nil }
            if !needs.isEmpty, scopes.isDisjoint(with: needs) {
                return FakeTransport.json(
                    403, ["error": ["code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation."]], for: request)
            }
            switch path {
            case "/v1.0/me": return FakeTransport.json(200, ["id": "u1", "userPrincipalName": "admin@contoso.test"], for: request)
            case "/v1.0/users": return FakeTransport.json(200, ["value": [["id": "u1"], ["id": "u2"]]], for: request)
            case "/v1.0/me/calendar": return FakeTransport.json(200, ["name": "Calendar"], for: request)
            case "/v1.0/servicePrincipals": return FakeTransport.json(200, ["value": [["id": "sp-1"]]], for: request)
            case "/v1.0/oauth2PermissionGrants":
                return FakeTransport.json(
                    200,
                    [
                        "value": [
                            [
                                "consentType": .string(consentType),
                                "scope": " User.Read.All Calendars.ReadWrite Directory.Read.All ",
                            ]
                        ]
                    ], for: request)
            default: return nil
            }
        }
    }

    @Test func microsoftChecksPassWithTheRequestedPermissions() async {
        let http = Self.graph(scopes: Set(Microsoft365.requiredScopes))
        let (checks, error) = await Microsoft365(tenant: nil, clientId: "app").test(
            tokens: Tokens(["t"]).source, ewsUrl: nil, mailbox: nil,
            http: http, progress: Self.noProgress)
        #expect(error == nil)
        #expect(checks.map(\.name) == ["graphDirectory", "graphCalendar", "organizationConsent"])
        #expect(http.requests.allSatisfy { FakeTransport.bearer($0) == "t" })
    }

    @Test func microsoftRefusalNamesTheMissingPermission() async {
        let http = Self.graph(scopes: ["User.Read.All", "Calendars.ReadWrite"]) // what syncwizard asked for before Directory.Read.All
        let (checks, error) = await Microsoft365(tenant: nil, clientId: "app").test(
            tokens: Tokens(["t"]).source, ewsUrl: nil, mailbox: nil,
            http: http, progress: Self.noProgress)
        #expect(error?.kind == .insufficientPrivileges)
        #expect(error?.data["missingPermission"] == "Directory.Read.All")
        #expect(checks.last?.name == "organizationConsent" && checks.last?.ok == false)
    }

    @Test func microsoftConsentForTheAdminAloneIsOrganizationConsentMissing() async {
        let http = Self.graph(scopes: Set(Microsoft365.requiredScopes), consentType: "Principal")
        let (_, error) = await Microsoft365(tenant: nil, clientId: "app").test(
            tokens: Tokens(["t"]).source, ewsUrl: nil, mailbox: nil,
            http: http, progress: Self.noProgress)
        #expect(error?.kind == .organizationConsentMissing)
    }

    @Test func microsoftRejectedCachedTokenIsReplacedOnce() async {
        let scopes = Set(Microsoft365.requiredScopes)
        let graph = Self.graph(scopes: scopes)
        let tokens = Tokens(["stale", "fresh"])
        let chained = ChainedTransport(
            first: { request in
                FakeTransport.bearer(request) == "stale" ? FakeTransport.json(401, ["error": ["code": "InvalidAuthenticationToken"]], for: request) : nil
            }, then: graph)
        let (checks, error) = await Microsoft365(tenant: nil, clientId: "app").test(
            tokens: tokens.source, ewsUrl: nil, mailbox: nil,
            http: chained, progress: Self.noProgress)
        #expect(error == nil, "\(String(describing: error))")
        #expect(checks.count == 3)
        #expect(tokens.forgets.withLock { $0 } == 1)
    }

    /// The three Graph checks are independent: they are in flight at once, and no /me probe
    /// goes before them (issue 16: each sequential call is a round trip on a WAN).
    @Test func microsoftGraphChecksRunAtOnceWithoutAProbe() async {
        let graph = Self.graph(scopes: Set(Microsoft365.requiredScopes))
        let overlap = OverlapTransport(then: graph, delayMs: 150)
        let (checks, error) = await Microsoft365(tenant: nil, clientId: "app").test(
            tokens: Tokens(["t"]).source, ewsUrl: nil, mailbox: nil,
            http: overlap, progress: Self.noProgress)
        #expect(error == nil, "\(String(describing: error))")
        #expect(checks.map(\.name) == ["graphDirectory", "graphCalendar", "organizationConsent"])
        #expect(!graph.requests.contains { FakeTransport.target($0) == "/v1.0/me" }, "no /me probe")
        #expect(overlap.peak.withLock { $0 } >= 3, "users, the calendar and the service principal at once")
    }

    /// A failure is still reported in the checks' order, with nothing after it.
    @Test func microsoftFirstFailingCheckInOrderEndsTheTest() async {
        let graph = Self.graph(scopes: ["User.Read.All", "Directory.Read.All"]) // no Calendars.*
        let (checks, error) = await Microsoft365(tenant: nil, clientId: "app").test(
            tokens: Tokens(["t"]).source, ewsUrl: nil, mailbox: nil,
            http: graph, progress: Self.noProgress)
        #expect(error?.kind == .insufficientPrivileges)
        #expect(checks.map(\.name) == ["graphDirectory", "graphCalendar"])
        #expect(checks.map(\.ok) == [true, false])
    }

    /// Fuzz finding said-first-line: Microsoft's description keeps its first line only, even
    /// with CRLF line ends (one Character in Swift).
    @Test func microsoftErrorsQuoteTheFirstLineOfTheDescription() {
        let error = Microsoft365.error(OAuthErrorResponse(error: "access_denied", description: "The user said no.\r\nTrace ID: 1\r\nCorrelation ID: 2"))
        #expect(error.message == "The sign-in was declined: The user said no.")
    }

    // MARK: Google

    @Test func googleDirectoryWithoutItsScopeAsksForSelectAll() async {
        let http = FakeTransport { request in
            if request.url.hasPrefix("https://www.googleapis.com/calendar/v3/calendars/primary") {
                return FakeTransport.json(200, ["summary": "Ada"], for: request)
            }
            if request.url.hasPrefix("https://admin.googleapis.com/admin/directory/v1/users") {
                return FakeTransport.json(
                    403,
                    [
                        "error": [
                            "code": 403, "message": "Request had insufficient authentication scopes.",
                            "errors": [["reason": "insufficientPermissions"]],
                        ]
                    ], for: request)
            }
            return nil
        }
        let (checks, error) = await Google(clientId: "g").test(tokens: Tokens(["t"]).source, http: http, progress: Self.noProgress)
        #expect(error?.kind == .scopesNotGranted)
        #expect(error?.hint?.contains("Select all") == true)
        #expect(checks.map(\.name) == ["directoryUsers"])
    }

    // MARK: SuperOffice

    @Test func superOfficeTenantNotRunningStopsBeforeTheAPI() async {
        let http = FakeTransport { request in
            request.url.hasSuffix("/api/state/Cust1")
                ? FakeTransport.json(200, ["State": "Suspended", "IsRunning": false], for: request) : nil
        }
        let superOffice = SuperOffice(environment: .online, clientId: "so")
        let (checks, error) = await superOffice.test(context: "Cust1", tokens: Tokens(["t"]).source, http: http, progress: Self.noProgress)
        #expect(error?.kind == .tenantNotRunning)
        #expect(error?.data["state"] == "Suspended")
        #expect(checks.map(\.name) == ["tenantState"])
        #expect(http.requests.count == 1)
    }

    @Test func superOfficeRetriesOnceWithAFreshTokenWhenTheAPIRejectsIt() async {
        let http = FakeTransport { request in
            if request.url.hasSuffix("/api/state/Cust1") {
                return FakeTransport.json(200, ["State": "Running", "IsRunning": true, "Api": "https://app-online.superoffice.com/Cust1/api"], for: request)
            }
            if request.url == "https://app-online.superoffice.com/Cust1/api/v1/User/currentPrincipal" {
                return FakeTransport.bearer(request) == "fresh"
                    ? FakeTransport.json(200, ["FullName": "Ada Admin"], for: request)
                    : FakeTransport.json(401, [:], for: request)
            }
            return nil
        }
        let tokens = Tokens(["stale", "fresh"])
        let (checks, error) = await SuperOffice(environment: .online, clientId: "so").test(
            context: "Cust1", tokens: tokens.source, http: http,
            progress: Self.noProgress)
        #expect(error == nil)
        #expect(checks.last?.message == "Signed in to the tenant as Ada Admin.")
        #expect(tokens.forgets.withLock { $0 } == 1)
    }
}

/// Answers from `first` where it has one, else from `then`.
/// Holds each request `delayMs` and records how many were in flight at once.
final class OverlapTransport: HTTPTransport {
    let then: any HTTPTransport
    let delayMs: Int
    let inFlight = Mutex(0)
    let peak = Mutex(0)
    init(then: any HTTPTransport, delayMs: Int) {
        self.then = then
        self.delayMs = delayMs
    }
    func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        let now = inFlight.withLock { n in
            n += 1
            return n
        }
        peak.withLock { $0 = max($0, now) }
        try? await Task.sleep(for: .milliseconds(delayMs))
        inFlight.withLock { $0 -= 1 }
        return try await then.send(request)
    }
}

struct ChainedTransport: HTTPTransport {
    let first: @Sendable (HTTPRequest) -> HTTPResponse?
    let then: any HTTPTransport
    func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        if let answer = first(request) { return answer }
        return try await then.send(request)
    }
}
