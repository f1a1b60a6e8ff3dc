import RPCCore

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
        public var system: System
        public var flow: Flow
        public var loginHint: String?
        public var adminConsent: Bool

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            profileId = try reader.profileId()
            system = try reader.requiredEnum("system", System.self, among: System.signIns)
            flow = try reader.optionalEnum("flow", Flow.self) ?? .browser
            loginHint = try reader.optionalString("loginHint", maxLength: 320)
            adminConsent = try reader.optionalBool("adminConsent") ?? false
            if adminConsent, system != .microsoft365 {
                throw .invalidParams(field: "adminConsent", "'adminConsent' applies to microsoft365 only.")
            }
            if flow == .deviceCode, system == .superOffice {
                throw .invalidParams(
                    field: "flow", "SuperOffice does not offer the device code flow; use the browser flow (completeSignIn covers a browser on another machine)."
                )
            }
            if flow == .deviceCode, system == .google {
                throw .invalidParams(
                    field: "flow",
                    "Google's device flow does not allow the Directory and Calendar scopes this sign-in needs; use the browser flow (completeSignIn covers a browser on another machine)."
                )
            }
        }
    }

    /// `{signInId, flow, authorizationUrl?, redirectUri?, userCode?, verificationUri?, message?, expiresAt}`.
    public struct Result: Sendable, Equatable, JSONRepresentable {
        public var signInId: String
        public var flow: Flow
        public var authorizationUrl: String?
        public var redirectUri: String?
        public var userCode: String?
        public var verificationUri: String?
        public var message: String?
        public var expiresAt: String

        public static func browser(signInId: String, authorizationUrl: String, redirectUri: String, expiresAt: String) -> Result {
            Result(signInId: signInId, flow: .browser, authorizationUrl: authorizationUrl, redirectUri: redirectUri, expiresAt: expiresAt)
        }

        public static func deviceCode(signInId: String, userCode: String, verificationUri: String, message: String?, expiresAt: String) -> Result {
            Result(signInId: signInId, flow: .deviceCode, userCode: userCode, verificationUri: verificationUri, message: message, expiresAt: expiresAt)
        }

        init(
            signInId: String, flow: Flow, authorizationUrl: String? = nil, redirectUri: String? = nil, userCode: String? = nil,
            verificationUri: String? = nil, message: String? = nil, expiresAt: String
        ) {
            self.signInId = signInId
            self.flow = flow
            self.authorizationUrl = authorizationUrl
            self.redirectUri = redirectUri
            self.userCode = userCode
            self.verificationUri = verificationUri
            self.message = message
            self.expiresAt = expiresAt
        }

        public var json: JSONValue {
            var o = JSONObject([("signInId", .string(signInId)), ("flow", .string(flow.rawValue))])
            for (name, value) in [
                ("authorizationUrl", authorizationUrl), ("redirectUri", redirectUri), ("userCode", userCode),
                ("verificationUri", verificationUri),
            ] {
                if let value { o.append(name, .string(value)) }
            }
            o.append("expiresAt", .string(expiresAt))
            if let message { o.append("message", .string(message)) }
            return .object(o)
        }
    }
}
