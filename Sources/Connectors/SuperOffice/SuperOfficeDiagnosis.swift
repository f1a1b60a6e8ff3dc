import ConnectorCore
import HTTP
import OAuth
import RPCCore
import WizardContract

/// SuperOffice, step by step: the environment's OpenID discovery document (the sign-in host
/// answers as SuperID, protocols.md §1), the tenant's state (State API), and the API as the
/// signed-in user (currentPrincipal), with the connection test's own calls.
extension SuperOffice {
    /// `context` and `tokens` nil: not signed in yet.
    public func diagnose(context: String?, tokens: AccessTokenSource?, http: any HTTPTransport, into run: inout DiagnosisRun) async {
        let host = self.host
        await run.step("superOffice.discovery", "The \(environment.rawValue) environment's discovery document") { evidence throws(RPCError) in
            let url = "https://\(host)/login/.well-known/openid-configuration"
            evidence["url"] = .string(url)
            let (response, json) = try await http.getJSON(url, maxResponseBytes: 1 << 20)
            evidence["status"] = .int(response.status)
            guard response.status == 200, let issuer = json?["issuer"]?.stringValue else {
                throw RPCError(
                    .serverError, "\(host) does not serve SuperOffice's discovery document (HTTP \(response.status)).",
                    hint: "Check the environment (setProviderSettings environment: sod, stage or online) and --superoffice-host.",
                    details: ["status": .int(response.status), "responseCode": .null])
            }
            evidence["issuer"] = .string(issuer)
            evidence["tokenEndpoint"] = json?["token_endpoint"]
            guard issuer == self.issuer else {
                throw RPCError(
                    .invalidToken, "\(host) names the issuer \(issuer), not \(self.issuer): id_tokens from it would be refused.",
                    hint: "Check --superoffice-host for the \(environment.rawValue) environment.")
            }
            return .pass("\(host) is SuperID for \(environment.rawValue) (issuer \(issuer)).")
        }
        guard let context, let tokens else {
            await run.step("superOffice.tenantState", "The tenant's state (State API)") { _ throws(RPCError) in
                throw RPCError(.notSignedIn, "SuperOffice is not signed in yet.", hint: "Sign in with SuperOffice (startSignIn).")
            }
            return
        }
        var apiBase = ""
        await run.step("superOffice.tenantState", "Tenant \(context)'s state (State API)") { evidence throws(RPCError) in
            evidence["context"] = .string(context)
            let (api, state) = try await tenantState(context: context, http: http)
            apiBase = api
            evidence["state"] = .string(state)
            evidence["api"] = .string(api)
            return .pass("Tenant \(context) is \(state); its API is \(api).")
        }
        await run.step("superOffice.currentPrincipal", "The API as the signed-in user", after: ["superOffice.tenantState"]) { _ throws(RPCError) in
            .pass(
                try await tokens.retryingOnRejection { token throws(RPCError) in
                    try await Self.currentPrincipal(apiBase: apiBase, accessToken: token, http: http)
                })
        }
    }
}
