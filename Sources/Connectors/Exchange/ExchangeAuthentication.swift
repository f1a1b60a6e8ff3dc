import ConnectorCore
import HTTP
import IntegratedAuth
import RPCCore
import WizardContract

/// Picks how to authenticate to an Exchange endpoint from what it offers, as Outlook does:
/// the request goes out once without credentials, and a 401's WWW-Authenticate decides, in the
/// order the server offers: Kerberos through GSSAPI when Negotiate is offered and the realm's KDC
/// answers, else NTLMv2 through gss-ntlmssp, both channel-bound to the server's certificate
/// (Extended Protection); libcurl's own NTLM only without gss-ntlmssp; Basic when that is all
/// the server offers (see IntegratedAuthenticator). Autodiscover's POX POSTs, EWS and the OAB all
/// go through here. Never CURLAUTH_ANY.
///
/// Sending the body unauthenticated first also keeps an NTLM handshake honest: the NEGOTIATE leg
/// goes with an empty body, which a server that needs no authentication would take as the whole
/// (empty, invalid) request.
enum ExchangeAuthentication {
    /// A transport failure (for Autodiscover's attempt log) or a refusal that is already the
    /// contract's error (clockSkew, channelBindingRequired, invalidCredentials from the KDC).
    enum Failure: Error {
        case transport(HTTPError)
        case refused(RPCError)
    }

    static func send(_ request: HTTPRequest, account: ExchangeAccount, client: any HTTPTransport) async throws(Failure)
        -> IntegratedAuthenticator.Outcome
    {
        let credentials = IntegratedCredentials(
            userName: account.userName, domain: account.domain, email: account.email,
            password: account.password)
        let outcome: IntegratedAuthenticator.Outcome
        do {
            outcome = try await IntegratedAuthenticator(client: client).send(request, credentials: credentials)
        } catch {
            if case .transport(let httpError) = error { throw .transport(httpError) }
            throw .refused(error.rpcError)
        }
        // A 401 to NTLM that went without a binding: Exchange with Extended Protection = Require
        // refuses that whatever the password (learn.microsoft.com/exchange/plan-and-deploy/
        // post-installation-tasks/security-best-practices/exchange-extended-protection), so say so.
        if outcome.response.status == 401, case .ntlm(channelBinding: false, let libcurl) = outcome.scheme,
            request.url.lowercased().hasPrefix("https:")
        {
            let why =
                libcurl
                ? "libcurl's own NTLM sends no channel binding and gss-ntlmssp is not installed"
                : "the server's certificate on that connection could not be read"
            throw .refused(
                IntegratedAuthError.channelBindingRequired(scheme: "ntlm", why: why, host: IntegratedAuthenticator.host(of: request.url))
                    .rpcError)
        }
        return outcome
    }

    static func sendIntegrated(_ request: HTTPRequest, account: ExchangeAccount, client: any HTTPTransport)
        async throws(RPCError) -> IntegratedAuthenticator.Outcome
    {
        do {
            return try await send(request, account: account, client: client)
        } catch {
            switch error {
            case .transport(let httpError): throw httpError.rpcError
            case .refused(let rpcError): throw rpcError
            }
        }
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
                .clockSkew,
                "Kerberos refused the sign-in with KRB_AP_ERR_SKEW: this computer's clock and the server's differ by more "
                    + "than the 5 minutes Kerberos allows.",
                hint: "Sync this computer's clock with the Windows domain's time source (the domain controllers; "
                    + "e.g. timedatectl set-ntp true with the domain controller as NTP server), or ask the administrator "
                    + "to check the server's clock. \(detail)",
                details: ["krbError": "KRB_AP_ERR_SKEW", "scheme": "kerberos", "maximumSkewSeconds": 300])
        case .channelBindingRequired(let scheme, let why, let host):
            RPCError(
                .channelBindingRequired,
                "\(host) refused \(scheme == "ntlm" ? "NTLM" : "Kerberos") sent without a TLS channel binding (\(why)); "
                    + "an Exchange with Extended Protection set to Require refuses exactly that.",
                hint: "Extended Protection ties the sign-in to the TLS certificate this computer sees. Install gss-ntlmssp "
                    + "(apt-get install gss-ntlmssp) for NTLMv2 with channel binding, or make Kerberos work (an SPN "
                    + "HTTP/\(host) and a reachable KDC). A proxy or load balancer that terminates TLS in front of Exchange "
                    + "must pass TLS through, or Extended Protection must be set to Accept for EWS and Autodiscover. "
                    + "The server does not say whether the password was right as well.",
                details: ["reason": .string(why), "scheme": .string(scheme), "host": .string(host)])
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
