import ConnectorCore
import HTTP
import RPCCore
import WizardContract

/// Provider signing keys by JWKS URL, fetched over verified https and refetched when a token
/// names a key id the cached set lacks (providers rotate keys).
public actor KeySetCache {
    private var sets: [String: [JSONWebKey]] = [:]
    private let http: any HTTPTransport

    public init(http: any HTTPTransport) {
        self.http = http
    }

    public func keys(_ url: String, forToken token: String) async throws(RPCError) -> [JSONWebKey] {
        let kid = Self.keyID(of: token)
        if let cached = sets[url], kid == nil || cached.contains(where: { $0.kid == kid }) { return cached }
        let response: HTTPResponse
        do {
            response = try await http.send(HTTPRequest(url: url, headers: ["Accept": "application/json"], timeoutSeconds: 20, maxResponseBytes: 1 << 20))
        } catch {
            throw error.rpcError
        }
        guard response.status == 200 else {
            throw RPCError(
                .serverError, "The identity provider's key set answered with HTTP \(response.status).",
                details: ["status": .int(response.status), "responseCode": .null])
        }
        let keys = try JWKS.parse(response.body)
        sets[url] = keys
        return keys
    }

    static func keyID(of token: String) -> String? {
        guard let header = token.split(separator: ".").first, let bytes = Base64URL.decode(header),
            let json = try? JSONParser.parse(bytes)
        else { return nil }
        return json["kid"]?.stringValue
    }
}
