import ConnectorCore
import HTTP
import OAuth
import RPCCore
import WizardContract

/// Google Workspace, step by step: a refreshed token (Google refuses it with
/// admin_policy_enforced while the app is not Trusted in the Admin console, protocols.md §3.5),
/// its scopes against the ones needed ("Select all"), then the Directory and the calendar with
/// the connection test's own calls.
extension Google {
    public func diagnose(tokens: AccessTokenSource?, http: any HTTPTransport, into run: inout DiagnosisRun) async {
        guard let tokens else {
            await run.step("google.trustedApp", "The app is allowed in the domain (a fresh access token)") { _ throws(RPCError) in
                throw RPCError(
                    .notSignedIn, "Google Workspace is not signed in yet.",
                    hint: "Mark the app Trusted in the Admin console first, then sign in and click \"Select all\".")
            }
            return
        }
        let grant = await run.freshToken(
            "google.trustedApp", "The app is allowed in the domain (a fresh access token)", from: tokens,
            evidence: ["clientId": .string(clientId)], passed: "Google issued an access token: the domain's policy allows the app.")
        let token = grant?.token ?? ""
        let granted = grant?.scope
        await run.step("google.scopes", "Granted scopes against the ones needed (\"Select all\")", after: ["google.trustedApp"]) { evidence throws(RPCError) in
            evidence["required"] = .array(Self.requiredScopes.map(JSONValue.string))
            guard let granted else { return .skipped("Google named no scopes with the token.") }
            let missing = Self.missingScopes(granted: granted)
            guard missing.isEmpty else { throw Self.scopesError(missing) }
            return .pass("Every scope the synchronizer needs is granted.")
        }
        await run.step("google.directory", "Directory API: the domain's users", after: ["google.trustedApp"]) { _ throws(RPCError) in
            .pass(try await Self.listUsers(token: token, http: http))
        }
        await run.step("google.calendar", "Calendar API: the primary calendar", after: ["google.trustedApp"]) { _ throws(RPCError) in
            .pass(try await Self.primaryCalendar(token: token, http: http))
        }
    }
}
