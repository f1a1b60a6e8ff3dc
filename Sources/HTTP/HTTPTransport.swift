/// What connectors and the OAuth flow need from HTTP: one request, one response. The libcurl
/// client is the real one; a test hands a connector a fake transport and runs it in-process,
/// the way NIO's EmbeddedChannel or MCP's in-memory transport stand in for a network.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse
    /// What integrated authentication learned about origins over this transport's connections.
    var authenticationMemory: AuthenticationMemory? { get }
}

extension HTTPClient: HTTPTransport {}
