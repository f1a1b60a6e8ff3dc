import RPCCore

/// The wizard's error kinds beside JSON-RPC's own (RPCCore): profiles, keyring, sign-in,
/// Exchange and endpoints. Codes are the contract's (Protocol/openrpc.json).
extension ErrorKind {
    // Profiles and wizard.
    public static let profileNotFound = ErrorKind("profileNotFound", code: -32001)
    public static let systemNotSelected = ErrorKind("systemNotSelected", code: -32002)
    public static let stepIncomplete = ErrorKind("stepIncomplete", code: -32003)
    public static let storageFailed = ErrorKind("storageFailed", code: -32005)

    // Keyring.
    public static let keyringUnavailable = ErrorKind("keyringUnavailable", code: -32010)
    public static let keyringLocked = ErrorKind("keyringLocked", code: -32011)

    // Sign-in (OAuth).
    public static let providerNotConfigured = ErrorKind("providerNotConfigured", code: -32020)
    public static let signInNotFound = ErrorKind("signInNotFound", code: -32021)
    public static let signInCancelled = ErrorKind("signInCancelled", code: -32022)
    public static let signInTimedOut = ErrorKind("signInTimedOut", code: -32023)
    public static let stateMismatch = ErrorKind("stateMismatch", code: -32024)
    public static let consentDenied = ErrorKind("consentDenied", code: -32025)
    public static let adminApprovalRequired = ErrorKind("adminApprovalRequired", code: -32026)
    public static let appNotTrusted = ErrorKind("appNotTrusted", code: -32027)
    public static let organizationConsentMissing = ErrorKind("organizationConsentMissing", code: -32028)
    public static let scopesNotGranted = ErrorKind("scopesNotGranted", code: -32029)
    public static let insufficientPrivileges = ErrorKind("insufficientPrivileges", code: -32030)
    public static let invalidToken = ErrorKind("invalidToken", code: -32031)
    public static let reauthenticationRequired = ErrorKind("reauthenticationRequired", code: -32032)
    /// Testing or using a system that has no sign-in (or no credentials) yet.
    public static let notSignedIn = ErrorKind("notSignedIn", code: -32033)
    /// Microsoft: the sign-in needs multi-factor authentication the flow could not complete (AADSTS50076, 50079).
    public static let mfaRequired = ErrorKind("mfaRequired", code: -32034)
    /// Microsoft: a Conditional Access policy blocked the sign-in (AADSTS53003).
    public static let conditionalAccessBlocked = ErrorKind("conditionalAccessBlocked", code: -32035)

    // Exchange, HTTP and endpoints.
    public static let invalidCredentials = ErrorKind("invalidCredentials", code: -32040)
    public static let autodiscoverFailed = ErrorKind("autodiscoverFailed", code: -32041)
    public static let redirectNeedsConfirmation = ErrorKind("redirectNeedsConfirmation", code: -32042)
    public static let certificateUntrusted = ErrorKind("certificateUntrusted", code: -32043)
    public static let endpointInvalid = ErrorKind("endpointInvalid", code: -32044)
    public static let hostUnreachable = ErrorKind("hostUnreachable", code: -32045)
    public static let timeout = ErrorKind("timeout", code: -32046)
    public static let serverError = ErrorKind("serverError", code: -32047)
    public static let mailboxNotFound = ErrorKind("mailboxNotFound", code: -32048)
    public static let impersonationDenied = ErrorKind("impersonationDenied", code: -32049)
    public static let accessDenied = ErrorKind("accessDenied", code: -32050)
    public static let tenantNotRunning = ErrorKind("tenantNotRunning", code: -32051)
    /// No allowed endpoint offers NTLM or Negotiate, so the domain cannot be read (discoverAccountHints).
    public static let hintsUnavailable = ErrorKind("hintsUnavailable", code: -32052)
    /// Diagnosis: an Exchange endpoint offers only Basic authentication (the password goes with
    /// every request; from the Internet, a target for password spraying).
    public static let weakAuthentication = ErrorKind("weakAuthentication", code: -32053)
    /// The server requires Extended Protection (TLS channel binding) and the path the request
    /// took cannot send one (libcurl's own NTLM, a certificate that could not be read, a proxy
    /// that terminates TLS).
    public static let channelBindingRequired = ErrorKind("channelBindingRequired", code: -32054)
    /// Kerberos refused the sign-in: the clocks differ by more than 5 minutes (KRB_AP_ERR_SKEW).
    public static let clockSkew = ErrorKind("clockSkew", code: -32055)

    /// Every kind this build can return, in contract order.
    public static let all: [ErrorKind] = [
        .parseError, .invalidRequest, .messageTooLarge, .methodNotFound, .invalidParams,
        .internalError, .cancelled,
        .profileNotFound, .systemNotSelected, .stepIncomplete, .serverShuttingDown, .storageFailed,
        .keyringUnavailable, .keyringLocked,
        .providerNotConfigured, .signInNotFound, .signInCancelled, .signInTimedOut, .stateMismatch,
        .consentDenied, .adminApprovalRequired, .appNotTrusted, .organizationConsentMissing,
        .scopesNotGranted, .insufficientPrivileges, .invalidToken, .reauthenticationRequired, .notSignedIn,
        .mfaRequired, .conditionalAccessBlocked,
        .invalidCredentials, .autodiscoverFailed, .redirectNeedsConfirmation, .certificateUntrusted,
        .endpointInvalid, .hostUnreachable, .timeout, .serverError, .mailboxNotFound,
        .impersonationDenied, .accessDenied, .tenantNotRunning, .hintsUnavailable, .weakAuthentication,
        .channelBindingRequired, .clockSkew,
    ]
}

extension RPCError {
    public static func profileNotFound(_ id: String) -> RPCError {
        RPCError(
            .profileNotFound, "No profile has the id '\(id)'.",
            hint: "Call listProfiles to see the existing profiles.",
            details: JSONObject([("profileId", .string(id))]))
    }
}
