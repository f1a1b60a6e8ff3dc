import HTTP
import RPCCore

extension HTTPTransport {
    /// GET a JSON resource (optionally with a bearer token): the response and its body parsed
    /// (nil when it is not JSON). Transport failures become the contract's kinds here.
    public func getJSON(_ url: String, bearer: String? = nil, timeoutSeconds: Double = 20, maxResponseBytes: Int = 8 << 20) async throws(RPCError)
        -> (response: HTTPResponse, json: JSONValue?)
    {
        var headers: HTTPHeaders = ["Accept": "application/json"]
        if let bearer { headers.add("Authorization", "Bearer \(bearer)") }
        do throws(HTTPError) {
            let response = try await send(HTTPRequest(url: url, headers: headers, timeoutSeconds: timeoutSeconds, maxResponseBytes: maxResponseBytes))
            return (response, try? JSONParser.parse(response.body))
        } catch {
            throw error.rpcError
        }
    }
}
