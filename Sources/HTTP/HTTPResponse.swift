/// A completed exchange. Any status, 401 and 500 included, is a response, not an error.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// The URL of the last request made (differs from the request's only after a redirect).
    public var effectiveURL: String
    /// Wall time of the whole `send`, including any certificate lookup and pinned retry.
    public var durationMs: Int

    public init(status: Int, headers: HTTPHeaders, body: [UInt8], effectiveURL: String, durationMs: Int) {
        self.status = status
        self.headers = headers
        self.body = body
        self.effectiveURL = effectiveURL
        self.durationMs = durationMs
    }

    /// The body decoded as UTF-8 (invalid sequences repaired).
    public var text: String { String(decoding: body, as: UTF8.self) }
}
