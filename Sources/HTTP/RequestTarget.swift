import CCurlShim

/// Scheme, host and port of a request URL, parsed by libcurl's own URL parser so that what
/// we check is exactly what libcurl will connect to.
public struct RequestTarget: Sendable {
    public var scheme: String
    public var host: String
    public var port: Int

    /// The lowercased host libcurl would connect to for an https URL, or nil (not https, not a
    /// URL libcurl accepts, user info in it). Decisions about where credentials may go are made
    /// on this, never on a second parser that could read the same text another way.
    public static func httpsHost(of url: String) -> String? {
        guard let target = try? RequestTarget(url: url), target.scheme == "https" else { return nil }
        return target.host.lowercased()
    }

    public init(url: String) throws(HTTPError) {
        try loadCurl()
        guard !url.containsControlCharacter, let handle = sw_curl_url() else {
            throw .invalidRequest(reason: "the URL is not valid")
        }
        defer { sw_curl_url_cleanup(handle) }
        guard sw_curl_url_set(handle, CURLUPART_URL, url, 0) == CURLUE_OK else {
            throw .invalidRequest(reason: "the URL is not an absolute http(s) URL")
        }
        func part(_ which: CURLUPart, _ flags: UInt32 = 0) -> String? {
            var value: UnsafeMutablePointer<CChar>?
            guard sw_curl_url_get(handle, which, &value, flags) == CURLUE_OK, let value else { return nil }
            defer { sw_curl_free(value) }
            return String(cString: value)
        }
        guard let scheme = part(CURLUPART_SCHEME)?.lowercased(), scheme == "https" || scheme == "http" else {
            throw .invalidRequest(reason: "only http and https URLs are supported")
        }
        guard let host = part(CURLUPART_HOST), !host.isEmpty else {
            throw .invalidRequest(reason: "the URL has no host")
        }
        // Credentials belong in `authentication`, where the https rule applies.
        guard part(CURLUPART_USER) == nil, part(CURLUPART_PASSWORD) == nil else {
            throw .invalidRequest(reason: "the URL carries user info; use authentication instead")
        }
        self.scheme = scheme
        self.host = host
        self.port = part(CURLUPART_PORT, UInt32(CURLU_DEFAULT_PORT)).flatMap { Int($0) } ?? (scheme == "https" ? 443 : 80)
    }

    /// Origin only: the certificate lookup connects here without path or query.
    var origin: String {
        "\(scheme)://\(host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host):\(port)/"
    }
}
