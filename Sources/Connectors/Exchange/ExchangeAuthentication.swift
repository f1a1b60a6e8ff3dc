import ConnectorCore
import HTTP
import IntegratedAuth
import RPCCore
import WizardContract

/// Picks how to authenticate to an Exchange endpoint from what it offers, as Outlook does:
/// the request goes out once without credentials, and a 401's WWW-Authenticate decides.
///
/// `sendIntegrated` (the connection test): Kerberos through GSSAPI when Negotiate is offered
/// and the realm's KDC answers, else NTLMv2 through gss-ntlmssp, both channel-bound to the
/// server's certificate (Extended Protection); libcurl's own NTLM only without gss-ntlmssp;
/// Basic when that is all the server offers (see IntegratedAuthenticator).
///
/// `send` (Autodiscover): libcurl's NTLM when offered, else Basic. Never CURLAUTH_ANY.
/// Sending the body unauthenticated first also keeps libcurl's NTLM handshake honest: with NTLM
/// it posts an empty body on the first leg, which a server that needs no authentication would
/// take as the whole (empty, invalid) request.
enum ExchangeAuthentication {
    static func send(_ request: HTTPRequest, account: ExchangeAccount, client: any HTTPTransport) async throws(HTTPError) -> HTTPResponse {
        var request = request
        request.authentication = .none
        let probe = try await client.send(request)
        guard probe.status == 401 else { return probe }
        let offered = probe.headers.values(for: "WWW-Authenticate").map { $0.lowercased() }
        let basicOnly =
            offered.contains { $0.hasPrefix("basic") }
            && !offered.contains { $0.hasPrefix("ntlm") || $0.hasPrefix("negotiate") }
        request.authentication = basicOnly ? account.basic : account.ntlm
        return try await client.send(request)
    }

    static func sendIntegrated(_ request: HTTPRequest, account: ExchangeAccount, client: any HTTPTransport)
        async throws(RPCError) -> IntegratedAuthenticator.Outcome
    {
        let credentials = IntegratedCredentials(
            userName: account.userName, domain: account.domain, email: account.email,
            password: account.password)
        let outcome: IntegratedAuthenticator.Outcome
        do {
            outcome = try await IntegratedAuthenticator(client: client).send(request, credentials: credentials)
        } catch {
            throw error.rpcError
        }
        if outcome.response.status == 401, case .ntlm(channelBinding: false, libcurl: true) = outcome.scheme {
            throw RPCError(
                .invalidCredentials,
                "The server refused NTLM without channel binding, which is all this computer can send.",
                hint: "Exchange with Extended Protection set to Require refuses NTLM without a TLS channel binding. "
                    + "Install gss-ntlmssp (Debian, Ubuntu: apt-get install gss-ntlmssp) for NTLMv2 with channel "
                    + "binding, or make Kerberos work (an SPN HTTP/<host> and a reachable KDC). "
                    + ExchangeHints.userNameForms,
                details: ["status": 401, "reason": "channelBindingRequired", "scheme": "ntlm"])
        }
        return outcome
    }
}

extension IntegratedAuthError {
    /// The one place integrated-auth failures become wizard errors.
    var rpcError: RPCError {
        switch self {
        case .credentialsRefused(let failure):
            RPCError(
                .invalidCredentials, "Kerberos did not accept the user name and password: \(failure.message).",
                hint: ExchangeHints.userNameForms,
                details: ["reason": "kerberosRefused", "krbError": failure.code.map { JSONValue.string($0) } ?? .null, "scheme": "kerberos"])
        case .clockSkew(let detail):
            RPCError(
                .invalidCredentials,
                "Kerberos refused the sign-in because the clocks differ by more than 5 minutes (KRB_AP_ERR_SKEW).",
                hint: "Set this computer's clock right (NTP, e.g. timedatectl set-ntp true) or ask the administrator "
                    + "to check the server's; Kerberos tolerates at most 5 minutes. \(detail)",
                details: ["reason": "clockSkew", "krbError": "KRB_AP_ERR_SKEW", "scheme": "kerberos"])
        case .connectionNotReused(let scheme):
            RPCError(
                .serverError,
                "The \(scheme) handshake was split over two connections, so it cannot complete.",
                hint: "A proxy or load balancer in front of Exchange closes the connection between the legs of "
                    + "the handshake; integrated authentication needs one connection (keep-alive, no HTTP/2).",
                details: ["reason": "connectionNotReused", "scheme": .string(scheme.lowercased()), "responseCode": .null])
        case .mutualAuthenticationFailed(let failure):
            RPCError(
                .serverError, "The server's Kerberos answer did not verify: \(failure.message).",
                hint: "The server is not the one the ticket was issued for; check the Exchange host name.",
                details: ["reason": "mutualAuthenticationFailed", "scheme": "kerberos", "responseCode": .null])
        case .transport(let error):
            error.rpcError
        }
    }
}
