import HTTP

/// Picks how to authenticate to an Exchange endpoint from what it offers, as Outlook does:
/// the request goes out once without credentials, and a 401's WWW-Authenticate decides.
/// NTLM when offered (also when only Negotiate is: IIS accepts NTLM there, and libcurl's
/// Negotiate needs a Kerberos ticket and never falls back), else Basic. Never CURLAUTH_ANY.
///
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
        let basicOnly = offered.contains { $0.hasPrefix("basic") }
            && !offered.contains { $0.hasPrefix("ntlm") || $0.hasPrefix("negotiate") }
        request.authentication = basicOnly ? account.basic : account.ntlm
        return try await client.send(request)
    }
}
