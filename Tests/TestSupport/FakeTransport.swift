import Foundation
import HTTP
import RPCCore
import Synchronization
import WizardContract

/// An in-process stand-in for the network: each request is answered by `route`, and every
/// request is kept for the test to read. Connectors take `any HTTPTransport`, so a test runs a
/// connector against this without the built binary, TLS or a fake server process.
public final class FakeTransport: HTTPTransport {
    public typealias Route = @Sendable (HTTPRequest) -> HTTPResponse?
    private let route: Route
    private let seen = Mutex<[HTTPRequest]>([])

    public init(_ route: @escaping Route) {
        self.route = route
    }

    public var requests: [HTTPRequest] { seen.withLock { $0 } }

    public func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        seen.withLock { $0.append(request) }
        return route(request) ?? Self.json(404, ["error": ["code": "NotFound", "message": "no route in the test"]], for: request)
    }

    /// A JSON answer.
    public static func json(_ status: Int, _ body: JSONValue, for request: HTTPRequest) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: JSONWriter.bytes(body), effectiveURL: request.url, durationMs: 0)
    }

    /// The bearer token of a request, if any.
    public static func bearer(_ request: HTTPRequest) -> String? {
        guard let value = request.headers["Authorization"], value.hasPrefix("Bearer ") else { return nil }
        return String(value.dropFirst(7))
    }

    /// The path and query of a request's URL (after the host).
    public static func target(_ request: HTTPRequest) -> String {
        guard let scheme = request.url.range(of: "://") else { return request.url }
        let rest = request.url[scheme.upperBound...]
        return rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? "/"
    }
}
