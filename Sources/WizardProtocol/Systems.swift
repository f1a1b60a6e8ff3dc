/// The calendar systems a profile can connect (exactly one at a time).
public enum CalendarSystem: String, Sendable, CaseIterable, Hashable {
    case microsoft365, exchange, google
}

/// Systems that sign in with OAuth.
public enum SignInSystem: String, Sendable, CaseIterable, Hashable {
    case superOffice, microsoft365, google
}

/// Systems whose provider settings (client id and secret) can be set.
public typealias ProviderSystem = SignInSystem

/// The `system` attribute of a keyring item (the contract's keyring schema).
public enum KeyringSystem: String, Sendable, CaseIterable, Hashable {
    case superOffice, microsoft365, exchange, google, provider
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
