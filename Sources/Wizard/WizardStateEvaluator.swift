import RPCCore
import WizardContract

/// Works out where the "Configure Systems" step stands from a profile and the provider
/// settings: a pure function, so every blocker can be pinned by a unit test.
public enum WizardStateEvaluator {
    public static func evaluate(_ profile: Profile, providers: [ProviderSettings]) -> WizardState {
        var blockers: [Blocker] = []
        let hasClientID: (System) -> Bool = { system in providers.contains { $0.system == system } }

        // SuperOffice: a client id, a sign-in, then a passing test.
        let so = profile.superOffice
        let superOffice = SystemState(status: status(of: so, hasCredentials: so.hasRefreshToken), lastTest: so.lastTest, account: so.account)
        if !so.hasRefreshToken {
            if !hasClientID(.superOffice) {
                blockers.append(
                    Blocker(
                        system: .superOffice, kind: BlockerKind.providerNotConfigured,
                        message: "SuperOffice has no client id yet: set it with setProviderSettings, then sign in with SuperOffice."))
            } else {
                blockers.append(
                    Blocker(
                        system: .superOffice, kind: BlockerKind.signInRequired,
                        message: "Sign in with SuperOffice."))
            }
        } else if let blocker = testBlocker(so, side: .superOffice, name: "SuperOffice") {
            blockers.append(blocker)
        }

        // Calendar: exactly one system, then its credentials, then a passing test.
        guard let system = profile.calendarSystem else {
            blockers.append(
                Blocker(
                    system: .calendar, kind: BlockerKind.systemNotSelected,
                    message: "Choose the calendar system: Microsoft 365, Microsoft Exchange or Google Workspace."))
            return WizardState(superOffice: superOffice, calendar: SystemState(reportsSystem: true, status: .notSelected), blockers: blockers)
        }
        let connection = profile.connection(for: system)
        let hasCredentials: Bool
        switch system {
        case .exchange:
            let hasEndpoint = ExchangeSettings(connection.settings).endpoints.ewsUrl != nil
            hasCredentials = connection.hasPassword && hasEndpoint
            if !connection.hasPassword {
                blockers.append(
                    Blocker(
                        system: .calendar, kind: BlockerKind.credentialsRequired,
                        message: "Enter the Exchange user name, domain, e-mail address and password."))
            } else if !hasEndpoint {
                blockers.append(
                    Blocker(
                        system: .calendar, kind: BlockerKind.endpointsRequired,
                        message: "Autodiscover found no Exchange Web Services URL: enter the EWS and Offline Address Book URLs."))
            }
        case .microsoft365, .google, .superOffice:
            hasCredentials = connection.hasRefreshToken
            let name = system == .google ? "Google" : "Microsoft"
            if !connection.hasRefreshToken {
                if !hasClientID(system) {
                    blockers.append(
                        Blocker(
                            system: .calendar, kind: BlockerKind.providerNotConfigured,
                            message: "\(name) has no client id yet: set it with setProviderSettings, then sign in with \(name)."))
                } else {
                    blockers.append(
                        Blocker(
                            system: .calendar, kind: BlockerKind.signInRequired,
                            message: "Sign in with \(name)."))
                }
            }
        }
        if hasCredentials, let blocker = testBlocker(connection, side: .calendar, name: system.displayName) {
            blockers.append(blocker)
        }
        let calendar = SystemState(
            system: system.rawValue, status: status(of: connection, hasCredentials: hasCredentials),
            lastTest: connection.lastTest, account: connection.account)
        return WizardState(superOffice: superOffice, calendar: calendar, blockers: blockers)
    }

    static func status(of connection: SystemConnection, hasCredentials: Bool) -> SystemState.Status {
        guard hasCredentials else { return .notConfigured }
        switch connection.lastTest?.ok {
        case nil: return .needsTest
        case false?: return .testFailed
        case true?: return .connected
        }
    }

    static func testBlocker(_ connection: SystemConnection, side: WizardSide, name: String) -> Blocker? {
        switch connection.lastTest?.ok {
        case nil:
            return Blocker(
                system: side, kind: BlockerKind.connectionNotTested,
                message: "Test the connection to \(name) (testConnection).")
        case false?:
            let reason = connection.lastTest?.message.map { ": \($0)" } ?? "."
            return Blocker(
                system: side, kind: BlockerKind.connectionTestFailed,
                message: "The last connection test of \(name) failed\(reason)")
        case true?:
            return nil
        }
    }
}
