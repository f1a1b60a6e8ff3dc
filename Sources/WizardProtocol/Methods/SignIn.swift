/// Starts "Sign in with …": a browser sign-in (authorization code + PKCE through a loopback
/// listener) or, for Microsoft, the device code flow.
public enum StartSignIn: RPCMethod {
    public static let name = "startSignIn"

    public enum Flow: String, Sendable, CaseIterable {
        case browser, deviceCode
    }

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["profileId", "system", "flow", "loginHint", "adminConsent"]
        public var profileId: String
        public var system: SignInSystem
        public var flow: Flow
        public var loginHint: String?
        public var adminConsent: Bool

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            profileId = try reader.profileId()
            system = try reader.requiredEnum("system", SignInSystem.self)
            flow = try reader.optionalEnum("flow", Flow.self) ?? .browser
            loginHint = try reader.optionalString("loginHint", maxLength: 320)
            adminConsent = try reader.optionalBool("adminConsent") ?? false
            if adminConsent, system != .microsoft365 {
                throw .invalidParams(field: "adminConsent", "'adminConsent' applies to microsoft365 only.")
            }
            if flow == .deviceCode, system == .superOffice {
                throw .invalidParams(field: "flow", "SuperOffice does not offer the device code flow; use the browser flow (completeSignIn covers a browser on another machine).")
            }
            if flow == .deviceCode, system == .google {
                throw .invalidParams(field: "flow", "Google's device flow does not allow the Directory and Calendar scopes this sign-in needs; use the browser flow (completeSignIn covers a browser on another machine).")
            }
        }
    }

    public typealias Result = JSONValue
}

public struct SignInIDParams: RPCParams, Equatable {
    public static let parameterNames = ["signInId"]
    public var signInId: String
    public init(reading reader: inout ParamsReader) throws(RPCError) {
        signInId = try reader.requiredNonEmptyString("signInId", maxLength: 128)
    }
}

/// Waits for a sign-in's outcome: the signInCompleted payload, or the sign-in's error.
public enum AwaitSignIn: RPCMethod {
    public static let name = "awaitSignIn"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["signInId", "timeoutSeconds"]
        public var signInId: String
        public var timeoutSeconds: Double?
        public init(reading reader: inout ParamsReader) throws(RPCError) {
            signInId = try reader.requiredNonEmptyString("signInId", maxLength: 128)
            timeoutSeconds = try reader.optionalNumber("timeoutSeconds", range: 0...3600)
        }
    }

    public typealias Result = JSONValue
}

/// For a browser on another machine: the user pastes the URL the browser ended on.
public enum CompleteSignIn: RPCMethod {
    public static let name = "completeSignIn"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["signInId", "redirectUrl"]
        public var signInId: String
        public var redirectUrl: String
        public init(reading reader: inout ParamsReader) throws(RPCError) {
            signInId = try reader.requiredNonEmptyString("signInId", maxLength: 128)
            redirectUrl = try reader.requiredNonEmptyString("redirectUrl", maxLength: 16384)
        }
    }

    public typealias Result = JSONValue
}

public enum CancelSignIn: RPCMethod {
    public static let name = "cancelSignIn"
    public typealias Params = SignInIDParams
    public typealias Result = JSONValue
}

/// Removes a system's tokens (or the Exchange password) from the keyring and the profile.
public enum SignOut: RPCMethod {
    public static let name = "signOut"

    public enum System: String, Sendable, CaseIterable {
        case superOffice, microsoft365, exchange, google
    }

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["profileId", "system"]
        public var profileId: String
        public var system: System
        public init(reading reader: inout ParamsReader) throws(RPCError) {
            profileId = try reader.profileId()
            system = try reader.requiredEnum("system", System.self)
        }
    }

    public struct Result: JSONRepresentable {
        public init() {}
        public var json: JSONValue { ["signedOut": true] }
    }
}
