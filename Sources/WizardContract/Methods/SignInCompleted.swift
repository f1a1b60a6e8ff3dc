import RPCCore

/// A finished sign-in: the `signInCompleted` payload, also what awaitSignIn and completeSignIn answer.
public struct SignInCompleted: Sendable, Equatable, JSONRepresentable {
    public var signInId: String
    public var profileId: String
    public var system: System
    public var account: JSONObject

    public init(signInId: String, profileId: String, system: System, account: JSONObject) {
        self.signInId = signInId
        self.profileId = profileId
        self.system = system
        self.account = account
    }

    public var json: JSONValue {
        ["signInId": .string(signInId), "profileId": .string(profileId), "system": .string(system.rawValue), "account": .object(account)]
    }
}
