import ConnectorCore
import ExchangeConnector
import JSONRPC
import RPCCore
import WizardContract

/// discoverAccountHints, and the hints an `invalidCredentials` error carries.
extension WizardService {
    func discoverAccountHints(_ params: DiscoverAccountHints.Params, context: RequestContext) async throws(RPCError) -> AccountHints {
        var pins: @Sendable (String) -> [String] = { _ in [] }
        if let id = params.profileId {
            let profile = try await store.get(id)
            pins = { host in profile.pins(for: host) }
        }
        let probe = AccountHintsProbe(client: try network.http(), resolver: network.resolver, pins: pins)
        return try await probe.discoverAccountHints(email: params.email, ewsUrl: params.ewsUrl, allowRedirectHosts: params.allowRedirectHosts) {
            stage, message, percent in context.progress(stage: stage, message: message, percent: percent)
        }
    }

    /// `invalidCredentials` that carries no hints yet: one short anonymous probe (at most 3 s)
    /// of the endpoint that refused, so the error says what to type without slowing it much.
    func addingAccountHints(to error: RPCError, url: String?, account: ExchangeAccount, profile: Profile) async -> RPCError {
        guard error.kind == .invalidCredentials, error.details["accountHints"] == nil, let url, let client = try? network.http() else { return error }
        let probe = AccountHintsProbe(
            client: client, resolver: nil, budgetSeconds: 3, attemptTimeoutSeconds: 3, pins: { host in profile.pins(for: host) })
        guard let hints = try? await probe.hints(at: url, email: account.email) else { return error }
        return hints.attach(to: error, account: account)
    }
}
