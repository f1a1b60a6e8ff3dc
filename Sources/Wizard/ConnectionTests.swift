import ConnectorCore
import JSONRPC
import WizardProtocol

/// testConnection: both sides at once, each reported with its checks; the outcome is kept in
/// the profile so getWizardState and nextStep can judge it.
extension WizardService {
    func testConnection(_ params: TestConnection.Params, context: RequestContext) async throws(RPCError) -> TestConnection.Result {
        let profile = try await store.get(params.profileId)
        let progress: ProgressReporter = { stage, message, percent in context.progress(stage: stage, message: message, percent: percent) }
        let testSuperOffice = params.target != .calendar
        let testCalendar = params.target != .superOffice
        async let superOffice: SystemTestResult? = testSuperOffice ? self.testSuperOffice(profile, progress: progress) : nil
        async let calendar: SystemTestResult? = testCalendar ? self.testCalendar(profile, progress: progress) : nil
        let results = [await superOffice, await calendar].compactMap { $0 }
        if Task.isCancelled { throw RPCError.cancelled }
        try await record(results, for: profile)
        return TestConnection.Result(results: results)
    }

    func testCalendar(_ profile: Profile, progress: @escaping ProgressReporter) async -> SystemTestResult {
        guard let system = profile.calendarSystem else {
            return SystemTestResult(side: .calendar, system: nil, checks: [],
                                    error: RPCError(.systemNotSelected, "No calendar system is selected yet.", hint: "Call selectCalendarSystem first."))
        }
        switch system {
        case .exchange:
            let (checks, error) = await testExchange(profile, progress: progress)
            return SystemTestResult(side: .calendar, system: system.rawValue, checks: checks, error: error)
        case .microsoft365:
            let (checks, error) = await testMicrosoft365(profile, progress: progress)
            return SystemTestResult(side: .calendar, system: system.rawValue, checks: checks, error: error)
        case .google:
            let (checks, error) = await testGoogle(profile, progress: progress)
            return SystemTestResult(side: .calendar, system: system.rawValue, checks: checks, error: error)
        }
    }

    /// Keeps each outcome, unless the credentials changed while the test ran (their revision
    /// moved on): a test of old settings must not count for new ones.
    func record(_ results: [SystemTestResult], for tested: Profile) async throws(RPCError) {
        let at = Clock.nowISO8601()
        try await store.update(tested.id) { profile in
            for result in results {
                let outcome = TestOutcome(ok: result.ok, at: at, message: result.error?.message)
                switch result.side {
                case .superOffice:
                    guard profile.superOffice.revision == tested.superOffice.revision else { continue }
                    if profile.superOffice.hasRefreshToken { profile.superOffice.lastTest = outcome }
                case .calendar:
                    guard let system = tested.calendarSystem, profile.calendarSystem == system,
                          profile.connection(for: system).revision == tested.connection(for: system).revision,
                          profile.calendars[system] != nil else { continue }
                    profile.calendars[system]?.lastTest = outcome
                }
            }
        }
    }
}
