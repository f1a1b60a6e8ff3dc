import ConnectorCore
import EWS
import HTTP
import OAuth
import RPCCore
import WizardContract

/// Microsoft 365, step by step: the tenant exists (its OpenID configuration), the app is known
/// there (AADSTS700016), a refreshed token and its scopes against the ones needed, consent for
/// the whole organization, Graph's directory and calendar, and EWS in Exchange Online (which
/// Microsoft retires, protocols.md §2.6). The Graph checks are the connection test's own.
extension Microsoft365 {
    /// `tokens` nil: not signed in (the steps that need a token are skipped, saying so).
    public func diagnose(
        tokens: AccessTokenSource?, ewsUrl: String?, mailbox: String?, http: any HTTPTransport, into run: inout DiagnosisRun
    ) async {
        let tenant = self.tenant
        await run.step("microsoft365.tenant", "Tenant \(tenant) (its OpenID configuration)") { evidence throws(RPCError) in
            let url = "https://\(Self.loginHost)/\(FormEncoding.encode(tenant))/v2.0/.well-known/openid-configuration"
            evidence["url"] = .string(url)
            let (response, json) = try await http.getJSON(url, maxResponseBytes: 1 << 20)
            evidence["status"] = .int(response.status)
            guard response.status == 200, let issuer = json?["issuer"]?.stringValue else {
                let said = json?["error_description"]?.stringValue ?? response.text
                let code = OAuthErrorResponse(error: "", description: said).aadsts
                evidence["aadsts"] = code.map(JSONValue.int)
                throw RPCError(
                    .providerNotConfigured, "Microsoft does not know the tenant '\(tenant)'\(code.map { " (AADSTS\($0))" } ?? "") (HTTP \(response.status)).",
                    hint:
                        "Set the tenant (setProviderSettings tenant) to your organization's tenant id, its domain (contoso.onmicrosoft.com) or 'organizations'."
                )
            }
            evidence["issuer"] = .string(issuer)
            evidence["tenantRegion"] = json?["tenant_region_scope"]
            return .pass("The tenant exists; its issuer is \(issuer).")
        }
        let clientId = self.clientId
        await run.step("microsoft365.app", "The app \(clientId) in the tenant", after: ["microsoft365.tenant"]) { evidence throws(RPCError) in
            // A device-code request names the app to the tenant without a user; Microsoft answers
            // AADSTS700016 when the app is not found there (protocols.md §2.4). The code is dropped.
            do throws(TokenEndpointFailure) {
                _ = try await TokenClient(http: http).post(deviceCodeEndpoint, form: [("client_id", clientId), ("scope", "openid profile")])
            } catch {
                switch error {
                case .oauth(let response, _):
                    evidence["error"] = .string(response.error)
                    evidence["aadsts"] = response.aadsts.map(JSONValue.int)
                    if response.aadsts == 700016 {
                        throw RPCError(
                            .providerNotConfigured,
                            "Microsoft says the app \(clientId) is not found in tenant \(tenant) (AADSTS700016): it is not registered there, or not consented to by the organization.",
                            hint:
                                "Check the client id (setProviderSettings). For a multi-tenant app, a Global Administrator of the tenant signs in once and ticks \"Consent on behalf of your organization\" (or startSignIn with adminConsent).",
                            details: ["aadsts": 700016])
                    }
                    let mapped = Self.error(response)
                    return .warn(
                        mapped.kind, "Microsoft answered \(response.error) for the app: \(mapped.message)", remediation: mapped.hint ?? Self.consentHint)
                case .transport(let rpc):
                    throw rpc
                }
            }
            return .pass("The tenant knows the app \(clientId).")
        }
        guard let tokens else {
            await run.step("microsoft365.token", "A fresh access token") { _ throws(RPCError) in
                throw RPCError(.notSignedIn, "Microsoft 365 is not signed in yet.", hint: Self.consentHint)
            }
            return
        }
        let grant = await run.freshToken(
            "microsoft365.token", "A fresh access token", after: ["microsoft365.tenant"], from: tokens, passed: "Microsoft refreshed the sign-in.")
        let token = grant?.token ?? ""
        let granted = grant?.scope
        await run.step("microsoft365.scopes", "Granted permissions against the ones needed", after: ["microsoft365.token"]) { evidence throws(RPCError) in
            guard let granted else { return .skipped("Microsoft named no scopes with the token.") }
            let missing = Self.missingScopes(granted: granted)
            evidence["required"] = .array(Self.requiredScopes.map(JSONValue.string))
            guard missing.isEmpty else {
                throw RPCError(
                    .scopesNotGranted, "The token lacks \(missing.joined(separator: ", ")).",
                    hint: "Sign in again as a Global Administrator, accept every requested permission and tick \"Consent on behalf of your organization\".",
                    details: ["missingScopes": .array(missing.map(JSONValue.string))])
            }
            return .pass("Every permission the synchronizer needs is granted (\(Self.requiredScopes.joined(separator: ", "))).")
        }
        await run.step("microsoft365.organizationConsent", "Consent for the whole organization", after: ["microsoft365.token"]) { _ throws(RPCError) in
            .pass(try await checkOrganizationConsent(token: token, http: http))
        }
        await run.step("microsoft365.directory", "Graph: the directory's users", after: ["microsoft365.token"]) { _ throws(RPCError) in
            .pass(try await Self.readDirectory(token: token, http: http))
        }
        await run.step("microsoft365.calendar", "Graph: the signed-in account's calendar", after: ["microsoft365.token"]) { _ throws(RPCError) in
            .pass(try await Self.readCalendar(token: token, http: http))
        }
        await run.step("microsoft365.ews", "EWS (with a token for Exchange Online)", after: ["microsoft365.token"]) { evidence throws(RPCError) in
            guard let ewsUrl, let mailbox else { return .skipped("No EWS URL is set; the synchronizer uses Graph only.") }
            evidence["ewsUrl"] = .string(ewsUrl)
            let outlookToken = try await tokens.token(scope: "\(Self.outlook)/EWS.AccessAsUser.All offline_access")
            return .pass(try await Self.ewsCalendar(ewsUrl: ewsUrl, mailbox: mailbox, token: outlookToken, http: http))
        }
        await run.step("microsoft365.ewsRetirement", "EWS in Exchange Online is being retired") { evidence throws(RPCError) in
            guard let ewsUrl else { return .pass("No EWS URL is set; the synchronizer uses Microsoft Graph.") }
            evidence["ewsUrl"] = .string(ewsUrl)
            guard RequestTarget.httpsHost(of: ewsUrl) == EWS.exchangeOnlineHost else {
                return .pass("The EWS URL \(ewsUrl) is not Exchange Online's.")
            }
            return .warn(
                .endpointInvalid, "The EWS URL points at Exchange Online (\(EWS.exchangeOnlineHost)). " + EWS.exchangeOnlineRetirement,
                remediation: "Remove the EWS override (overrideEndpoints) so the synchronizer uses Microsoft Graph, before 1 October 2026.")
        }
    }
}
