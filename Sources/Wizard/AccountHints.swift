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
}
