import ConnectorCore
import RPCCore
import WizardContract

extension DiagnosisRun {
    /// The step that refreshes the sign-in now (not from the cache), so the provider's own
    /// answer shows: an error (AADSTS, admin_policy_enforced, invalid_grant) or a token and the
    /// scopes it grants. Returns them when the step passed.
    public mutating func freshToken(
        _ id: String, _ title: String, after dependencies: [String] = [], from tokens: AccessTokenSource, evidence extra: JSONObject = [:],
        passed message: String
    ) async -> (token: String, scope: String?)? {
        var grant: (token: String, scope: String?)?
        await step(id, title, after: dependencies) { evidence throws(RPCError) in
            for member in extra.members { evidence[member.key] = member.value }
            let fresh = try await tokens.freshGrant()
            grant = fresh
            evidence.scopes("scopes", fresh.scope)
            return .pass(message)
        }
        return grant
    }
}
