import RPCCore
import Testing
import Wizard
import WizardContract

@Suite struct WizardStateTests {
    func profile(_ change: (inout Profile) -> Void = { _ in }) -> Profile {
        var p = Profile(id: "3f2b0c1e-1111-4222-8333-444455556666", name: "P", createdAt: "2026-01-01T00:00:00.000Z")
        change(&p)
        return p
    }
    let allProviders = [
        ProviderSettings(system: .superOffice, clientId: "so"), ProviderSettings(system: .microsoft365, clientId: "ms"),
        ProviderSettings(system: .google, clientId: "g"),
    ]
    let passed = TestOutcome(ok: true, at: "2026-01-01T00:00:00.000Z")

    func kinds(_ state: WizardState) -> [String] { state.blockers.map { "\($0.system.rawValue):\($0.kind)" } }

    @Test func newProfileIsBlockedOnBothSides() {
        let state = WizardStateEvaluator.evaluate(profile(), providers: [])
        #expect(kinds(state) == ["superOffice:providerNotConfigured", "calendar:systemNotSelected"])
        #expect(!state.canContinue)
        #expect(state.calendar.status == .notSelected)
        #expect(state.json["calendar"]?.objectValue?.keys.contains("system") == true)
        #expect(state.json["calendar"]?["system"] == .null)
    }

    @Test func withClientIdsTheBlockersAskForSignIn() {
        let state = WizardStateEvaluator.evaluate(profile { $0.calendarSystem = .google }, providers: allProviders)
        #expect(kinds(state) == ["superOffice:signInRequired", "calendar:signInRequired"])
    }

    @Test func exchangeNeedsCredentialsThenEndpointsThenATest() {
        var p = profile { $0.calendarSystem = .exchange }
        #expect(kinds(WizardStateEvaluator.evaluate(p, providers: allProviders)).last == "calendar:credentialsRequired")
        p.calendars[.exchange] = SystemConnection(hasPassword: true)
        #expect(kinds(WizardStateEvaluator.evaluate(p, providers: allProviders)).last == "calendar:endpointsRequired")
        p.calendars[.exchange]?.settings["ewsUrl"] = "https://mail.contoso.com/EWS/Exchange.asmx"
        #expect(kinds(WizardStateEvaluator.evaluate(p, providers: allProviders)).last == "calendar:connectionNotTested")
        p.calendars[.exchange]?.lastTest = TestOutcome(ok: false, at: "t", message: "401")
        let failed = WizardStateEvaluator.evaluate(p, providers: allProviders)
        #expect(kinds(failed).last == "calendar:connectionTestFailed")
        #expect(failed.calendar.status == .testFailed)
        p.calendars[.exchange]?.lastTest = passed
        #expect(WizardStateEvaluator.evaluate(p, providers: allProviders).calendar.connected)
    }

    @Test func bothSidesConnectedAndTestedCanContinue() {
        let p = profile {
            $0.superOffice = SystemConnection(hasRefreshToken: true, lastTest: passed)
            $0.calendarSystem = .microsoft365
            $0.calendars[.microsoft365] = SystemConnection(hasRefreshToken: true, lastTest: passed)
        }
        let state = WizardStateEvaluator.evaluate(p, providers: allProviders)
        #expect(state.blockers.isEmpty)
        #expect(state.canContinue)
        #expect(state.json["canContinue"] == true)
    }

    @Test func switchingSystemsJudgesOnlyTheSelectedOne() {
        let p = profile {
            $0.superOffice = SystemConnection(hasRefreshToken: true, lastTest: passed)
            $0.calendars[.microsoft365] = SystemConnection(hasRefreshToken: true, lastTest: passed)
            $0.calendarSystem = .google
        }
        #expect(kinds(WizardStateEvaluator.evaluate(p, providers: allProviders)) == ["calendar:signInRequired"])
    }

    @Test func profileJSONNeverCarriesSecretsAndRoundTrips() throws {
        let p = profile {
            $0.calendarSystem = .exchange
            $0.calendars[.exchange] = SystemConnection(hasPassword: true, settings: ["userName": "alice"])
        }
        let text = JSONWriter.string(p.storedJSON)
        #expect(text.contains("\"hasPassword\":true"))
        #expect(Profile(json: try JSONParser.parse(text)) == p)
    }
}
