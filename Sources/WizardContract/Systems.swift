import RPCCore

/// The systems of the "Configure Systems" step, one vocabulary for all of them: SuperOffice and
/// the three calendar systems a profile connects exactly one of. What differs between them is
/// derived here, so nothing else converts between system enums.
public enum System: String, Sendable, CaseIterable, Hashable {
    case superOffice, microsoft365, exchange, google

    /// The calendar systems, in the contract's order.
    public static let calendars: [System] = [.microsoft365, .exchange, .google]
    /// The systems that sign in with OAuth (and have provider settings: a client id).
    public static let signIns: [System] = [.superOffice, .microsoft365, .google]

    public var isCalendar: Bool { self != .superOffice }
    public var usesOAuth: Bool { self != .exchange }
    /// The side of the wizard the system is on.
    public var side: WizardSide { isCalendar ? .calendar : .superOffice }
    /// The keyring's `system` attribute for the system's own secrets.
    public var keyringName: String { rawValue }

    public var displayName: String {
        switch self {
        case .superOffice: "SuperOffice"
        case .microsoft365: "Microsoft 365"
        case .exchange: "Microsoft Exchange"
        case .google: "Google Workspace"
        }
    }
}

/// The `kind` attribute of a keyring item.
public enum SecretKind: String, Sendable, CaseIterable, Hashable {
    case password, refreshToken, clientSecret
}

/// The side of the wizard a blocker or test result belongs to.
public enum WizardSide: String, Sendable, CaseIterable, Hashable {
    case superOffice, calendar
}

public enum SuperOfficeEnvironment: String, Sendable, CaseIterable, Hashable {
    case sod, stage, online
}
