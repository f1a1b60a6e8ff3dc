import ConnectorCore
import HTTP
import RPCCore
import WizardContract

/// Provider signing keys by JWKS URL, fetched over verified https and refetched when a token
/// names a key id the cached set lacks (providers rotate keys). A fetch in flight is shared:
/// the one started while the browser is out (`prefetch`) serves the check after the callback.
public actor KeySetCache {
    private var sets: [String: [JSONWebKey]] = [:]
    private var inFlight: [String: Task<Result<[JSONWebKey], RPCError>, Never>] = [:]
    private let http: any HTTPTransport

    public init(http: any HTTPTransport) {
        self.http = http
    }

    public func keys(_ url: String, forToken token: String) async throws(RPCError) -> [JSONWebKey] {
        let kid = Self.keyID(of: token)
        if let cached = try await cachedOrPending(url), kid == nil || cached.contains(where: { $0.kid == kid }) { return cached }
        // Not there: a new download, never one that started before this token was issued.
        return try await fetch(url, shared: false).get()
    }

    /// Fetches the set unless it is cached or on its way; a failure is left for `keys` to
    /// retry and report. On the token endpoint's host (Microsoft, SuperOffice) it also opens
    /// the connection the token request then reuses from libcurl's pool.
    public func prefetch(_ url: String) async {
        if sets[url] == nil { _ = await fetch(url, shared: true) }
    }

    /// The cached set, else the one being fetched (nil when that fetch failed: fetch anew).
    private func cachedOrPending(_ url: String) async throws(RPCError) -> [JSONWebKey]? {
        if let cached = sets[url] { return cached }
        guard let pending = inFlight[url] else { return nil }
        return try? await pending.value.get()
    }

    private func fetch(_ url: String, shared: Bool) async -> Result<[JSONWebKey], RPCError> {
        if shared, let pending = inFlight[url] { return await pending.value }
        let http = self.http
        let task = Task { () -> Result<[JSONWebKey], RPCError> in
            do throws(RPCError) {
                return .success(try await Self.download(url, http: http))
            } catch {
                return .failure(error)
            }
        }
        inFlight[url] = task
        let result = await task.value
        if inFlight[url] == task { inFlight[url] = nil }
        if case .success(let keys) = result { sets[url] = keys }
        return result
    }

    private static func download(_ url: String, http: any HTTPTransport) async throws(RPCError) -> [JSONWebKey] {
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
        return try JWKS.parse(response.body)
    }

    static func keyID(of token: String) -> String? {
        guard let header = token.split(separator: ".").first, let bytes = Base64URL.decode(header),
            let json = try? JSONParser.parse(bytes)
        else { return nil }
        return json["kid"]?.stringValue
    }
}
