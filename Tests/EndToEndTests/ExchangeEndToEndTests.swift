import Foundation
import RPCCore
import TestSupport
import Testing
import WizardContract

/// Microsoft Exchange through the built binary against fake Exchange servers on loopback over
/// TLS (real host names via --connect-to, a test CA), NTLM checked by pyspnego's acceptor, a fake
/// DNS server for SRV. Every host a run could reach is routed to the fakes, so their logs show
/// any request that should not have happened.
@Suite struct ExchangeEndToEndTests {
    static let users: JSONValue = ["CONTOSO:alice:Passw0rd!", ":alice@contoso.test:Passw0rd!", "FABRIKAM:alice:Passw0rd!", "CONTOSO:bob:Passw0rd!"]
    static let settings: JSONValue = [
        "action": "settings",
        "protocols": [
            ["type": "EXPR", "ewsUrl": "https://mail.contoso.test/EWS/Exchange.asmx", "oabUrl": "https://mail.contoso.test/OAB/abc/"],
            ["type": "EXCH", "ewsUrl": "https://internal.contoso.test/EWS/Exchange.asmx"],
        ],
    ]
    static let mail: JSONValue = [
        "ews": [
            "path": "/EWS/Exchange.asmx", "result": "success",
            "byMailbox": [
                "nobody@contoso.test": "ErrorNonExistentMailbox",
                "boss@contoso.test": "soapFault:ErrorImpersonateUserDenied",
            ],
        ],
        "oab": ["path": "/OAB/abc/oab.xml", "status": 200],
    ]
    /// Every name a discovery for contoso.test (or a subdomain) could touch, parents included.
    static let routedHosts = [
        "contoso.test", "autodiscover.contoso.test", "mail.contoso.test", "internal.contoso.test",
        "sub.contoso.test", "autodiscover.sub.contoso.test", "autodiscover.test", "test",
        "mail.fabrikam.test", "fabrikam.test", "autodiscover.fabrikam.test", "loop.contoso.test",
        "basic.contoso.test", "busy.contoso.test", "ews.contoso.test", "other.contoso.test",
    ]

    struct Setup {
        let fake: FakeExchange
        let server: ServerProcess
        let profileId: JSONValue
    }

    static func setUp(
        hosts: JSONValue, httpHosts: JSONValue = [:], srv: JSONValue = [:], budget: Double = 15,
        secretStore: String = "memory", extra: [String] = []
    ) async throws -> Setup {
        let fake = try await FakeExchange.start(config: ["hosts": hosts, "httpHosts": httpHosts, "srv": srv, "users": users])
        var arguments =
            [
                "--secret-store", secretStore, "--ca-file", fake.caFile, "--dns-server", "127.0.0.1:\(fake.dnsPort)",
                "--autodiscover-budget", String(budget),
            ] + extra
        for entry in fake.connectTo(hosts: routedHosts) + fake.connectToHTTP(hosts: routedHosts) { arguments += ["--connect-to", entry] }
        let server = try ServerProcess(arguments: arguments)
        let profile = try await server.call("createProfile", ["name": "Exchange"])
        let id = try #require(profile["id"])
        _ = try await server.call("selectCalendarSystem", ["profileId": id, "system": "exchange"])
        return Setup(fake: fake, server: server, profileId: id)
    }

    static func submit(
        _ s: Setup, user: String = "alice", domain: String? = "CONTOSO", email: String = "alice@contoso.test",
        password: String = "Passw0rd!", extra: JSONObject = [:]
    ) -> JSONValue {
        var params: JSONObject = ["profileId": s.profileId, "userName": .string(user), "email": .string(email), "password": .string(password)]
        if let domain { params["domain"] = .string(domain) }
        for member in extra.members { params[member.key] = member.value }
        return .object(params)
    }

    static func attempts(_ value: JSONValue?) -> [(url: String, outcome: String)] {
        (value?.arrayValue ?? []).map { ($0["url"]?.stringValue ?? "", $0["outcome"]?.stringValue ?? "") }
    }

    @Test func autodiscoverSkipsHangingCandidateThenTheConnectionTestPasses() async throws {
        let s = try await Self.setUp(hosts: [
            "contoso.test": ["behaviour": "hang"],
            "autodiscover.contoso.test": ["autodiscover": Self.settings],
            "mail.contoso.test": Self.mail,
        ])
        let result = try await s.server.call("submitExchangeCredentials", Self.submit(s), timeout: 30)
        #expect(result["ewsUrl"] == "https://mail.contoso.test/EWS/Exchange.asmx")
        #expect(result["oabUrl"] == "https://mail.contoso.test/OAB/abc/")
        #expect(result["endpointSource"] == "autodiscover")
        #expect(result["autodiscover"]?["ok"] == true)
        let tries = Self.attempts(result["autodiscover"]?["attempts"])
        #expect(tries.contains { $0.url == "https://autodiscover.contoso.test/autodiscover/autodiscover.xml" && $0.outcome == "settings" })
        #expect(tries.contains { $0.url == "https://contoso.test/autodiscover/autodiscover.xml" && $0.outcome == "abandoned" })
        // Every attempt was streamed as progress on the way.
        let progress = try await s.server.next { $0["method"] == "progress" }.0
        #expect(progress["params"]?["stage"] == "autodiscover")

        let tested = try await s.server.call("testConnection", ["profileId": s.profileId, "system": "calendar"], timeout: 30)
        let calendar = try #require(tested["results"]?.arrayValue?.first)
        #expect(calendar["ok"] == true, "\(JSONWriter.string(calendar))")
        #expect(calendar["calendarSystem"] == "exchange")
        #expect(calendar["checks"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["ewsCalendar", "offlineAddressBook"])
        let ews = s.fake.requests(host: "mail.contoso.test").filter { $0["path"] == "/EWS/Exchange.asmx" && $0["status"] == 200 }
        #expect(ews.first?["authenticatedUser"]?.stringValue?.lowercased() == "contoso\\alice")
        #expect(ews.first?["serverVersion"]?.stringValue != nil)
        let state = try await s.server.call("getWizardState", ["profileId": s.profileId])
        #expect(state["calendar"]?["connected"] == true)
        #expect(state["blockers"]?.arrayValue?.map { $0["system"] ?? .null } == ["superOffice"])
    }

    @Test func emailUserNameWithBlankDomainWorks() async throws {
        let s = try await Self.setUp(hosts: [
            "contoso.test": ["status": 404], "autodiscover.contoso.test": ["autodiscover": Self.settings],
            "mail.contoso.test": Self.mail,
        ])
        _ = try await s.server.call("submitExchangeCredentials", Self.submit(s, user: "alice@contoso.test", domain: nil), timeout: 30)
        let tested = try await s.server.call("testConnection", ["profileId": s.profileId, "system": "calendar"], timeout: 30)
        #expect(tested["results"]?.arrayValue?.first?["ok"] == true)
    }

    @Test(arguments: [("alice", "CONTOSO", "wrong"), ("alice", "WRONGDOMAIN", "Passw0rd!"), ("alice", nil, "Passw0rd!")] as [(String, String?, String)])
    func wrongPasswordDomainOrMissingDomainIsInvalidCredentials(_ user: String, _ domain: String?, _ password: String) async throws {
        let s = try await Self.setUp(hosts: [
            "contoso.test": ["status": 404], "autodiscover.contoso.test": ["autodiscover": Self.settings],
            "mail.contoso.test": Self.mail,
        ])
        let error = try await s.server.callExpectingError(
            "submitExchangeCredentials",
            Self.submit(s, user: user, domain: domain, password: password), timeout: 30)
        #expect(error["data"]?["kind"] == "invalidCredentials", "\(JSONWriter.string(error))")
        #expect(error["data"]?["hint"]?.stringValue?.contains("domain") == true)
        // The same with the URLs given by hand: the connection test says it too.
        _ = try await s.server.call("overrideEndpoints", ["profileId": s.profileId, "ewsUrl": "https://mail.contoso.test/EWS/Exchange.asmx"])
        let tested = try await s.server.call("testConnection", ["profileId": s.profileId, "system": "calendar"], timeout: 30)
        #expect(tested["results"]?.arrayValue?.first?["error"]?["data"]?["kind"] == "invalidCredentials")
        #expect(!s.fake.requests().contains { $0["authenticatedUser"] != .null && $0["authenticatedUser"] != nil })
    }

    @Test func credentialsNeverGoOverHTTPNorAboveTheDomain() async throws {
        let s = try await Self.setUp(
            hosts: ["sub.contoso.test": ["status": 404], "autodiscover.sub.contoso.test": ["reset": true]],
            httpHosts: ["autodiscover.sub.contoso.test": ["redirect": "http://mail.contoso.test/autodiscover/autodiscover.xml"]],
            budget: 10)
        let error = try await s.server.callExpectingError("submitExchangeCredentials", Self.submit(s, email: "alice@sub.contoso.test"), timeout: 30)
        #expect(error["data"]?["kind"] == "autodiscoverFailed")
        #expect(error["data"]?["hint"]?.stringValue?.contains("overrideEndpoints") == true)
        let tries = Self.attempts(error["data"]?["attempts"])
        #expect(tries.contains { $0.url.hasPrefix("http://autodiscover.sub.contoso.test") && $0.outcome == "rejected" })
        #expect(tries.contains { $0.url == "_autodiscover._tcp.sub.contoso.test" })
        let seen = s.fake.requests()
        #expect(!seen.contains { $0["listener"] == "http" && $0["authScheme"] != .null && $0["authScheme"] != nil }, "credentials over http")
        for parent in ["contoso.test", "autodiscover.contoso.test", "autodiscover.test", "test", "mail.contoso.test"] {
            #expect(!seen.contains { $0["host"]?.stringValue == parent }, "contacted \(parent)")
        }
    }

    @Test func httpRedirectMethodIsFollowedToHTTPSWithoutCredentialsOnHTTP() async throws {
        let s = try await Self.setUp(
            hosts: [
                "contoso.test": ["status": 404], "autodiscover.contoso.test": ["status": 500],
                "mail.contoso.test": ["autodiscover": Self.settings],
            ],
            httpHosts: ["autodiscover.contoso.test": ["redirect": "https://mail.contoso.test/autodiscover/autodiscover.xml"]])
        let result = try await s.server.call("submitExchangeCredentials", Self.submit(s), timeout: 30)
        #expect(result["ewsUrl"] == "https://mail.contoso.test/EWS/Exchange.asmx")
        let http = s.fake.requests().filter { $0["listener"] == "http" }
        #expect(!http.isEmpty)
        #expect(http.allSatisfy { $0["authScheme"] == .null || $0["authScheme"] == nil })
        #expect(s.fake.requests(host: "mail.contoso.test").contains { $0["authenticatedUser"]?.stringValue != nil })
    }

    @Test func srvRecordIsTheLastResort() async throws {
        let s = try await Self.setUp(
            hosts: [
                "contoso.test": ["status": 404], "autodiscover.contoso.test": ["status": 404],
                "mail.contoso.test": ["autodiscover": Self.settings],
            ],
            httpHosts: ["autodiscover.contoso.test": ["status": 404]],
            srv: [
                "_autodiscover._tcp.contoso.test": [
                    ["priority": 10, "weight": 5, "port": 443, "target": "mail.contoso.test"],
                    ["priority": 5, "weight": 0, "port": 8443, "target": "other.contoso.test"],
                ]
            ])
        let result = try await s.server.call("submitExchangeCredentials", Self.submit(s), timeout: 30)
        #expect(result["ewsUrl"] == "https://mail.contoso.test/EWS/Exchange.asmx")
        #expect(Self.attempts(result["autodiscover"]?["attempts"]).contains { $0.url == "_autodiscover._tcp.contoso.test" && $0.outcome == "records" })
        #expect(!s.fake.requests().contains { $0["host"] == "other.contoso.test" }, "port 8443 records are not used")
    }

    /// Learned once per organization (issue 16.4): the second profile of contoso.test asks the
    /// Autodiscover URL the first one found (through SRV) before anything else; an address that
    /// URL does not know (Exchange answers per address) falls back to the usual walk.
    @Test func anotherProfileOfTheDomainAsksTheLearnedEndpointFirst() async throws {
        var aliceOnly = Self.settings.objectValue ?? [:]
        aliceOnly["mailboxes"] = ["alice@contoso.test": []]
        var bobOnly = Self.settings.objectValue ?? [:]
        bobOnly["mailboxes"] = ["bob@contoso.test": []]
        var mail = Self.mail.objectValue ?? [:]
        mail["autodiscover"] = .object(aliceOnly)
        let s = try await Self.setUp(
            hosts: ["contoso.test": ["status": 404], "autodiscover.contoso.test": ["autodiscover": .object(bobOnly)], "mail.contoso.test": .object(mail)],
            httpHosts: ["autodiscover.contoso.test": ["status": 404]],
            srv: ["_autodiscover._tcp.contoso.test": [["priority": 0, "weight": 0, "port": 443, "target": "mail.contoso.test"]]])
        let learned = "https://mail.contoso.test/autodiscover/autodiscover.xml"
        let first = try await s.server.call("submitExchangeCredentials", Self.submit(s), timeout: 30)
        #expect(Self.attempts(first["autodiscover"]?["attempts"]).last.map { [$0.url, $0.outcome] } == [learned, "settings"])

        func newProfile(_ name: String) async throws -> Setup {
            let id = try #require(try await s.server.call("createProfile", ["name": .string(name)])["id"])
            _ = try await s.server.call("selectCalendarSystem", ["profileId": id, "system": "exchange"])
            return Setup(fake: s.fake, server: s.server, profileId: id)
        }
        let before = s.fake.requests().count
        let second = try await s.server.call("submitExchangeCredentials", Self.submit(try await newProfile("Second")), timeout: 30)
        #expect(second["ewsUrl"] == "https://mail.contoso.test/EWS/Exchange.asmx")
        #expect(Self.attempts(second["autodiscover"]?["attempts"]).map { [$0.url, $0.outcome] } == [[learned, "settings"]])
        let asked = s.fake.requests().dropFirst(before)
        #expect(asked.allSatisfy { $0["host"] == "mail.contoso.test" }, "nothing but the learned endpoint: \(asked)")

        let bob = try await s.server.call(
            "submitExchangeCredentials", Self.submit(try await newProfile("Bob"), user: "bob", email: "bob@contoso.test"), timeout: 30)
        let tries = Self.attempts(bob["autodiscover"]?["attempts"])
        #expect(tries.first.map { [$0.url, $0.outcome] } == [learned, "autodiscoverError"], "\(tries)")
        #expect(tries.contains { $0.url == "https://autodiscover.contoso.test/autodiscover/autodiscover.xml" && $0.outcome == "settings" }, "\(tries)")
    }

    @Test func redirectOutsideTheDomainNeedsConfirmation() async throws {
        let s = try await Self.setUp(hosts: [
            "contoso.test": ["status": 404],
            "autodiscover.contoso.test": [
                "autodiscover": ["action": "redirectUrl", "redirectUrl": "https://mail.fabrikam.test/autodiscover/autodiscover.xml"]
            ],
            "mail.fabrikam.test": [
                "autodiscover": ["action": "settings", "protocols": [["type": "EXPR", "ewsUrl": "https://mail.fabrikam.test/EWS/Exchange.asmx"]]]
            ],
        ])
        let error = try await s.server.callExpectingError("submitExchangeCredentials", Self.submit(s), timeout: 30)
        #expect(error["data"]?["kind"] == "redirectNeedsConfirmation")
        #expect(error["data"]?["host"] == "mail.fabrikam.test")
        #expect(s.fake.requests(host: "mail.fabrikam.test").isEmpty, "no request before the user confirms")
        let allowed = try await s.server.call("submitExchangeCredentials", Self.submit(s, extra: ["allowRedirectHosts": ["mail.fabrikam.test"]]), timeout: 30)
        #expect(allowed["ewsUrl"] == "https://mail.fabrikam.test/EWS/Exchange.asmx")
    }

    @Test func redirectLoopEndsWithAReport() async throws {
        let s = try await Self.setUp(
            hosts: [
                "contoso.test": ["autodiscover": ["action": "redirectUrl", "redirectUrl": "https://loop.contoso.test/autodiscover/autodiscover.xml"]],
                "loop.contoso.test": ["autodiscover": ["action": "redirectUrl", "redirectUrl": "https://contoso.test/autodiscover/autodiscover.xml"]],
                "autodiscover.contoso.test": ["status": 404],
            ],
            httpHosts: ["autodiscover.contoso.test": ["status": 404]], budget: 10)
        let error = try await s.server.callExpectingError("submitExchangeCredentials", Self.submit(s), timeout: 30)
        #expect(error["data"]?["kind"] == "autodiscoverFailed")
        #expect(Self.attempts(error["data"]?["attempts"]).contains { $0.outcome == "rejected" })
        #expect(s.fake.requests(host: "loop.contoso.test").count <= 3)
    }

    /// protocols.md §7.1: an alias is answered with redirectAddr to the primary address on the
    /// same domain; discovery restarts for it at the same URLs, which is not a loop.
    @Test func aliasRedirectAddrOnTheSameDomainRestartsAndSucceeds() async throws {
        var perAddress = Self.settings.objectValue ?? [:]
        perAddress["mailboxes"] = ["alice.wilber@contoso.test": ["alice@contoso.test"]]
        let s = try await Self.setUp(hosts: [
            "contoso.test": ["status": 404], "autodiscover.contoso.test": ["autodiscover": .object(perAddress)],
            "mail.contoso.test": Self.mail,
        ])
        let result = try await s.server.call("submitExchangeCredentials", Self.submit(s), timeout: 30)
        #expect(result["ewsUrl"] == "https://mail.contoso.test/EWS/Exchange.asmx")
        let tries = Self.attempts(result["autodiscover"]?["attempts"])
        #expect(tries.contains { $0.outcome == "redirectAddr" })
        #expect(!tries.contains { $0.outcome == "rejected" }, "\(tries)")
        let asked = s.fake.requests(host: "autodiscover.contoso.test").compactMap { $0["emailAddress"]?.stringValue }
        #expect(asked == ["alice@contoso.test", "alice.wilber@contoso.test"])
        // An address no mailbox has is error 500 from the fake, as from Exchange (a new profile:
        // a failed Autodiscover keeps the endpoints a profile already has).
        let other = try #require(try await s.server.call("createProfile", ["name": "Other"])["id"])
        _ = try await s.server.call("selectCalendarSystem", ["profileId": other, "system": "exchange"])
        let fresh = Setup(fake: s.fake, server: s.server, profileId: other)
        let unknown = try await s.server.callExpectingError("submitExchangeCredentials", Self.submit(fresh, email: "nobody@contoso.test"), timeout: 30)
        #expect(unknown["data"]?["kind"] == "autodiscoverFailed")
        #expect(Self.attempts(unknown["data"]?["attempts"]).contains { $0.outcome == "autodiscoverError" })
    }

    @Test func redirectAddrBackToAnAddressAlreadyTriedIsALoop() async throws {
        var circular = Self.settings.objectValue ?? [:]
        circular["byAddress"] = [
            "alice@contoso.test": ["action": "redirectAddr", "redirectAddr": "al@contoso.test"],
            "al@contoso.test": ["action": "redirectAddr", "redirectAddr": "alice@contoso.test"],
        ]
        let s = try await Self.setUp(
            hosts: ["contoso.test": ["status": 404], "autodiscover.contoso.test": ["autodiscover": .object(circular)]],
            httpHosts: ["autodiscover.contoso.test": ["status": 404]], budget: 10)
        let error = try await s.server.callExpectingError("submitExchangeCredentials", Self.submit(s), timeout: 30)
        #expect(error["data"]?["kind"] == "autodiscoverFailed")
        #expect(error["message"]?.stringValue?.contains("circle") == true, "\(JSONWriter.string(error))")
    }

    @Test func tenRedirectsOfEveryKindAreTheLimit() async throws {
        // a0 → a1 → … by redirectAddr, each on the same domain: the 11th redirect ends it.
        var chain = Self.settings.objectValue ?? [:]
        var byAddress = JSONObject()
        for i in 0..<12 {
            let from = i == 0 ? "alice@contoso.test" : "a\(i)@contoso.test"
            byAddress[from] = ["action": "redirectAddr", "redirectAddr": .string("a\(i + 1)@contoso.test")]
        }
        chain["byAddress"] = .object(byAddress)
        let s = try await Self.setUp(
            hosts: ["contoso.test": ["status": 404], "autodiscover.contoso.test": ["autodiscover": .object(chain)]],
            httpHosts: ["autodiscover.contoso.test": ["status": 404]], budget: 20)
        let error = try await s.server.callExpectingError("submitExchangeCredentials", Self.submit(s), timeout: 40)
        #expect(error["data"]?["kind"] == "autodiscoverFailed")
        #expect(error["message"]?.stringValue?.contains("more than 10 redirects") == true, "\(JSONWriter.string(error))")
        #expect(s.fake.requests(host: "autodiscover.contoso.test").filter { $0["emailAddress"] != nil && $0["emailAddress"] != .null }.count == 11)
    }

    /// The budget covers every step, the DNS lookup included: a DNS server that never answers
    /// must not hold submitExchangeCredentials past --autodiscover-budget.
    @Test func autodiscoverBudgetCoversADNSServerThatNeverAnswers() async throws {
        let s = try await Self.setUp(
            hosts: ["contoso.test": ["status": 404], "autodiscover.contoso.test": ["status": 404]],
            httpHosts: ["autodiscover.contoso.test": ["status": 404]],
            srv: ["_autodiscover._tcp.contoso.test": ["behaviour": "hang"]], budget: 2)
        let watch = ContinuousClock.now
        let error = try await s.server.callExpectingError("submitExchangeCredentials", Self.submit(s), timeout: 30)
        let elapsed = ContinuousClock.now - watch
        #expect(error["data"]?["kind"] == "autodiscoverFailed")
        let tries = Self.attempts(error["data"]?["attempts"])
        #expect(tries.contains { $0.url == "_autodiscover._tcp.contoso.test" && $0.outcome == "timeout" }, "\(tries)")
        #expect(s.fake.dnsQueries().contains { $0["host"] == "_autodiscover._tcp.contoso.test" }, "the lookup was made")
        // A contract bound, not a speed claim: the budget plus a margin for process and pipe overhead.
        #expect(elapsed < .seconds(3.5), "took \(elapsed) with a 2 s budget")
    }

    @Test func hostileCandidatesAreReportedAndBounded() async throws {
        let s = try await Self.setUp(
            hosts: [
                "contoso.test": ["oversizeBytes": 20_000_000, "auth": "none"],
                "autodiscover.contoso.test": ["invalidXml": true, "auth": "none"],
            ],
            httpHosts: ["autodiscover.contoso.test": ["behaviour": "hang"]], budget: 4)
        let error = try await s.server.callExpectingError("submitExchangeCredentials", Self.submit(s), timeout: 30)
        #expect(error["data"]?["kind"] == "autodiscoverFailed")
        let outcomes = Self.attempts(error["data"]?["attempts"])
        #expect(outcomes.contains { $0.url.hasPrefix("https://contoso.test") && $0.outcome == "tooLarge" })
        #expect(outcomes.contains { $0.url.hasPrefix("https://autodiscover.contoso.test") && $0.outcome == "invalidResponse" })
        #expect(outcomes.contains { $0.url.hasPrefix("http://autodiscover.contoso.test") && $0.outcome == "timeout" })
    }

    @Test func untrustedCertificateCanBeCheckedAndTrusted() async throws {
        let s = try await Self.setUp(hosts: [
            "contoso.test": ["status": 404],
            "autodiscover.contoso.test": ["untrusted": true, "autodiscover": Self.settings],
            "mail.contoso.test": Self.mail,
        ])
        let error = try await s.server.callExpectingError("submitExchangeCredentials", Self.submit(s), timeout: 30)
        #expect(error["data"]?["kind"] == "certificateUntrusted")
        #expect(error["data"]?["host"] == "autodiscover.contoso.test")
        let sha = try #require(error["data"]?["sha256"]?.stringValue)
        #expect(sha == s.fake.certificateSHA256(host: "autodiscover.contoso.test"))
        #expect(error["data"]?["pem"]?.stringValue?.hasPrefix("-----BEGIN CERTIFICATE-----") == true)
        // The untrusted host never saw credentials.
        #expect(!s.fake.requests(host: "autodiscover.contoso.test").contains { $0["authScheme"] != .null && $0["authScheme"] != nil })
        _ = try await s.server.call("trustCertificate", ["profileId": s.profileId, "host": "autodiscover.contoso.test", "sha256": .string(sha)])
        let result = try await s.server.call("submitExchangeCredentials", Self.submit(s), timeout: 30)
        #expect(result["ewsUrl"] == "https://mail.contoso.test/EWS/Exchange.asmx")
    }

    @Test func connectionTestErrorsCarryTheirKinds() async throws {
        let s = try await Self.setUp(hosts: [
            "mail.contoso.test": Self.mail,
            "basic.contoso.test": ["auth": "basic", "ews": ["result": "ErrorAccessDenied"]],
            "busy.contoso.test": ["auth": "none", "ews": ["result": "status:503"]],
        ])
        func test(ews: String, impersonate: String?) async throws -> JSONValue? {
            var extra: JSONObject = ["autodiscover": false]
            if let impersonate { extra["impersonateMailbox"] = .string(impersonate) }
            _ = try await s.server.call("submitExchangeCredentials", Self.submit(s, extra: extra))
            _ = try await s.server.call("overrideEndpoints", ["profileId": s.profileId, "ewsUrl": .string(ews)])
            let tested = try await s.server.call("testConnection", ["profileId": s.profileId, "system": "calendar"], timeout: 30)
            return tested["results"]?.arrayValue?.first
        }
        let impersonating = try await test(ews: "https://mail.contoso.test/EWS/Exchange.asmx", impersonate: "someone@contoso.test")
        #expect(impersonating?["ok"] == true)
        let logged = s.fake.requests(host: "mail.contoso.test").last { $0["status"] == 200 }
        #expect(logged?["impersonating"] == "someone@contoso.test")
        #expect(logged?["anchorMailbox"] == "someone@contoso.test")
        #expect(
            try await test(ews: "https://mail.contoso.test/EWS/Exchange.asmx", impersonate: "nobody@contoso.test")?["error"]?["data"]?["kind"]
                == "mailboxNotFound")
        #expect(
            try await test(ews: "https://mail.contoso.test/EWS/Exchange.asmx", impersonate: "boss@contoso.test")?["error"]?["data"]?["kind"]
                == "impersonationDenied")
        #expect(try await test(ews: "https://basic.contoso.test/EWS/Exchange.asmx", impersonate: nil)?["error"]?["data"]?["kind"] == "accessDenied")
        let busy = try await test(ews: "https://busy.contoso.test/EWS/Exchange.asmx", impersonate: nil)
        #expect(busy?["error"]?["data"]?["kind"] == "serverError")
        #expect(busy?["error"]?["data"]?["status"] == 503, "\(JSONWriter.string(busy ?? .null))")
        let state = try await s.server.call("getWizardState", ["profileId": s.profileId])
        #expect(state["calendar"]?["status"] == "testFailed")
    }

    @Test func overrideIsValidatedAndSurvivesALaterAutodiscover() async throws {
        let s = try await Self.setUp(hosts: ["contoso.test": ["status": 404], "autodiscover.contoso.test": ["autodiscover": Self.settings]])
        for bad in ["http://mail.contoso.test/EWS/Exchange.asmx", "/EWS/Exchange.asmx", "https://", "https://user:pw@mail.contoso.test/EWS"] {
            let error = try await s.server.callExpectingError("overrideEndpoints", ["profileId": s.profileId, "ewsUrl": .string(bad)])
            #expect(error["data"]?["kind"] == "endpointInvalid", "\(bad)")
            #expect(error["data"]?["field"] == "ewsUrl")
        }
        let badOAB = try await s.server.callExpectingError(
            "overrideEndpoints", ["profileId": s.profileId, "ewsUrl": "https://ews.contoso.test/EWS/Exchange.asmx", "oabUrl": "ftp://x"])
        #expect(badOAB["data"]?["field"] == "oabUrl")
        let override = try await s.server.call("overrideEndpoints", ["profileId": s.profileId, "ewsUrl": "https://ews.contoso.test/EWS/Exchange.asmx"])
        #expect(override["endpointSource"] == "override")
        let after = try await s.server.call("submitExchangeCredentials", Self.submit(s), timeout: 30)
        #expect(after["ewsUrl"] == "https://ews.contoso.test/EWS/Exchange.asmx")
        #expect(after["endpointSource"] == "override")
        #expect(after["autodiscover"]?["ok"] == true)
    }

    @Test func exchangeNeedsTheExchangeSystemSelected() async throws {
        let server = try ServerProcess()
        let id = try #require(try await server.call("createProfile", ["name": "x"])["id"])
        let params: JSONValue = ["profileId": id, "userName": "a", "email": "a@contoso.test", "password": "p"]
        #expect(try await server.callExpectingError("submitExchangeCredentials", params)["data"]?["kind"] == "systemNotSelected")
        _ = try await server.call("selectCalendarSystem", ["profileId": id, "system": "google"])
        #expect(try await server.callExpectingError("submitExchangeCredentials", params)["data"]?["kind"] == "systemNotSelected")
        #expect(
            try await server.callExpectingError(
                "submitExchangeCredentials", ["profileId": id, "userName": "CONTOSO\\a", "email": "a@contoso.test", "password": "p"])["data"]?["field"]
                == "userName")
        #expect(
            try await server.callExpectingError("submitExchangeCredentials", ["profileId": id, "userName": "a", "email": "not-an-address", "password": "p"])[
                "data"]?["field"] == "email")
    }
}

@Suite(.enabled(if: TestPaths.hasTestKeyring, "needs scripts/with-test-keyring.sh"))
struct ExchangeKeyringTests {
    @Test func passwordLivesOnlyInTheKeyring() async throws {
        let canary = "Pw-canary-\(UUID().uuidString.prefix(8))"
        let trace = TestPaths.makeTemporaryDirectory("ex-trace") + "/trace.log"
        let s = try await ExchangeEndToEndTests.setUp(
            hosts: ["contoso.test": ["status": 404], "autodiscover.contoso.test": ["status": 401]],
            httpHosts: ["autodiscover.contoso.test": ["status": 404]],
            budget: 5, secretStore: "keyring", extra: ["--trace-file", trace, "--log-level", "trace"])
        let error = try await s.server.callExpectingError("submitExchangeCredentials", ExchangeEndToEndTests.submit(s, password: canary), timeout: 30)
        #expect(["invalidCredentials", "autodiscoverFailed"].contains(error["data"]?["kind"]?.stringValue ?? ""))
        let id = try #require(s.profileId.stringValue)
        #expect(try SecretTool.lookup(["profile": id, "system": "exchange", "kind": "password"]) == canary)
        let profile = try await s.server.call("getProfile", ["profileId": s.profileId])
        #expect(profile["calendar"]?["exchange"]?["hasPassword"] == true)
        s.server.closeInput()
        _ = try await s.server.waitForExit()
        #expect(!String(decoding: s.server.stdoutBytes, as: UTF8.self).contains(canary))
        #expect(!s.server.stderrText.contains(canary))
        #expect(!((try? String(contentsOfFile: trace, encoding: .utf8)) ?? "").contains(canary))
        for file in (try? FileManager.default.subpathsOfDirectory(atPath: s.server.configDirectory)) ?? [] {
            let data = FileManager.default.contents(atPath: s.server.configDirectory + "/" + file) ?? Data()
            #expect(!String(decoding: data, as: UTF8.self).contains(canary), "\(file)")
        }
        #expect(!s.fake.stderrText.contains(canary))
    }
}
