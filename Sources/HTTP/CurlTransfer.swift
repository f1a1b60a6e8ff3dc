import CCurlShim
import Synchronization

/// What one libcurl transfer should do. Built by `HTTPClient`, turned into an easy handle here.
struct TransferSpec {
    enum Mode {
        /// Normal transfer: full peer and host verification.
        case verified
        /// Handshake only (CONNECT_ONLY), verification off, to read the server's certificate.
        /// Sends no HTTP at all, so no credentials or body ever travel over that connection.
        case certificateLookup
        /// The user pinned this server's certificate. Peer verification is off, but libcurl
        /// still aborts the handshake unless the server's public key hashes to `publicKeyPin`
        /// ("sha256//<base64>"). This is the only place verification is relaxed.
        case pinned(publicKeyPin: String)
        /// Diagnosis: TCP connect only (CONNECT_ONLY on an http URL), nothing sent.
        case tcpProbe
        /// Diagnosis: a verified TLS handshake only (CONNECT_ONLY), nothing sent over it.
        case tlsProbe
    }

    var mode: Mode
    var url: String
    var scheme: String
    var method: String
    var headers: HTTPHeaders
    var body: [UInt8]
    var timeoutMs: Int
    var connectTimeoutMs: Int
    var maxResponseBytes: Int
    var authentication: HTTPAuthentication
    var followRedirects: Bool
    var requireHTTP11 = false
}

/// Raw outcome of one transfer, read on the driver thread before the handle is freed.
struct TransferResult: Sendable {
    var code: CURLcode = CURLE_OK
    var detail: String = ""
    var osErrno: Int = 0
    var status: Int = 0
    var headers = HTTPHeaders()
    var body: [UInt8] = []
    var effectiveURL = ""
    var exceededLimit = false
    var cancelled = false
    /// certinfo of the leaf certificate (certificate lookup, and a verified https transfer's new connection).
    var leafCertificate: [String: String] = [:]
    var connection = HTTPConnectionInfo()
    /// OpenSSL's protocol version and cipher as libcurl reports them after the handshake
    /// ("TLSv1.3 / TLS_AES_256_GCM_SHA384"; SSL_get_version, SSL_get_cipher), probes only.
    var tlsSummary: String?
    /// CURLINFO_CONNECT_TIME_T and CURLINFO_APPCONNECT_TIME_T in microseconds (0: not reached).
    var connectMicros: Int = 0
    var tlsMicros: Int = 0
}

/// One easy handle plus every piece of memory libcurl points into while it runs.
///
/// After `submit`, the mutable fields are touched only on the driver thread (callbacks run
/// inside curl_multi_perform there); `state` is the one part shared with other threads.
final class CurlTransfer: @unchecked Sendable {
    let easy: UnsafeMutableRawPointer
    private let limit: Int
    private let wantsCertificate: Bool
    private let caBundle: CABundle?
    private var slists: [UnsafeMutablePointer<curl_slist>] = []
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private var requestBody: UnsafeMutableBufferPointer<UInt8>?
    private var responseBody: [UInt8] = []
    private var responseHeaders = HTTPHeaders()
    private var headerBytes = 0
    private var exceededLimit = false
    /// Written by the debug callback (driver thread) in probe transfers.
    fileprivate var tlsSummary: String?

    private struct State {
        var cancelled = false
        var continuation: CheckedContinuation<TransferResult, Never>?
    }
    private let state = Mutex(State())

    init(spec: TransferSpec, configuration: HTTPClient.Configuration, caBundle: CABundle?) throws(HTTPError) {
        try loadCurl()
        guard let easy = sw_curl_easy_init() else {
            throw .transport(code: Int(CURLE_OUT_OF_MEMORY.rawValue), detail: "curl_easy_init failed")
        }
        self.easy = easy
        self.limit = spec.maxResponseBytes
        self.caBundle = caBundle
        switch spec.mode {
        case .certificateLookup: wantsCertificate = true
        case .verified: wantsCertificate = spec.scheme == "https"
        case .pinned: wantsCertificate = true
        case .tcpProbe, .tlsProbe: wantsCertificate = false
        }
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        do {
            try configure(spec, configuration)
        } catch {
            release()
            throw error
        }
    }

    deinit {
        release()
    }

    private var released = false
    private func release() {
        guard !released else { return }
        released = true
        sw_curl_easy_cleanup(easy)
        for list in slists { sw_curl_slist_free_all(list) }
        errorBuffer.deallocate()
        requestBody?.deallocate()
    }

    // MARK: Options

    private func configure(_ spec: TransferSpec, _ configuration: HTTPClient.Configuration) throws(HTTPError) {
        try set(CURLOPT_NOSIGNAL, 1)
        try set(CURLOPT_ERRORBUFFER, pointer: UnsafeRawPointer(errorBuffer))
        try set(CURLOPT_URL, string: spec.url)
        try set(CURLOPT_PROTOCOLS_STR, string: "http,https")
        // Never follow a redirect from https down to http.
        try set(CURLOPT_REDIR_PROTOCOLS_STR, string: spec.scheme == "https" ? "https" : "http,https")
        try set(CURLOPT_FOLLOWLOCATION, spec.followRedirects ? 1 : 0)
        try set(CURLOPT_MAXREDIRS, 10)
        try set(CURLOPT_USERAGENT, string: configuration.userAgent)
        try set(CURLOPT_TIMEOUT_MS, spec.timeoutMs)
        try set(CURLOPT_CONNECTTIMEOUT_MS, spec.connectTimeoutMs)
        // Proxies come from https_proxy/no_proxy: libcurl reads them unless CURLOPT_PROXY is set.
        if let caBundle {
            try set(CURLOPT_CAINFO_BLOB, blob: caBundle.pem)
            if let caPath = caBundle.caPath { try set(CURLOPT_CAPATH, string: caPath) }
        }
        if !configuration.connectTo.isEmpty {
            try set(CURLOPT_CONNECT_TO, list: configuration.connectTo)
        }

        switch spec.mode {
        case .verified:
            try set(CURLOPT_SSL_VERIFYPEER, 1)
            try set(CURLOPT_SSL_VERIFYHOST, 2)
            if spec.scheme == "https" {
                // Every new connection's leaf certificate is read (HTTPClient remembers it per
                // connection for channel binding). A resumed TLS session still reports it:
                // OpenSSL keeps the peer's chain in the session and libcurl's CERTINFO reads it
                // from there (HTTPClientTests.resumedSessionStillReportsTheServerCertificate), so
                // new connections to a server resume through the process-wide session share.
                try set(CURLOPT_CERTINFO, 1)
                if let share = sw_curl_tls_session_share() { try set(CURLOPT_SHARE, pointer: UnsafeRawPointer(share)) }
            }
        case .certificateLookup:
            try set(CURLOPT_SSL_VERIFYPEER, 0)
            try set(CURLOPT_SSL_VERIFYHOST, 0)
            try set(CURLOPT_CERTINFO, 1)
            // A fresh connection (certinfo is only read on a new handshake) that nobody reuses.
            try connectOnly()
            try captureTLSSummary()
            return // no method, headers, credentials or body on an unverified connection
        case .tcpProbe:
            return try connectOnly()
        case .tlsProbe:
            try set(CURLOPT_SSL_VERIFYPEER, 1)
            try set(CURLOPT_SSL_VERIFYHOST, 2)
            try set(CURLOPT_SSL_SESSIONID_CACHE, 0)
            try connectOnly()
            return try captureTLSSummary()
        case .pinned(let publicKeyPin):
            // The pin, not the CA or the name, is the trust decision the user made for this
            // host (typically a self-signed on-premises server named differently).
            try set(CURLOPT_SSL_VERIFYPEER, 0)
            try set(CURLOPT_SSL_VERIFYHOST, 0)
            try set(CURLOPT_PINNEDPUBLICKEY, string: publicKeyPin)
            // The leaf of a new connection is read as on verified https (channel binding: the
            // pinned server's certificate is the one the binding names), and the connection
            // stays open for the next leg of an NTLM or Kerberos handshake, which must go over
            // it. A verified transfer never picks it up: libcurl reuses a connection only for
            // the same TLS configuration, peer verification included (vtls.c,
            // match_ssl_primary_config); HTTPClientTests pins that.
            try set(CURLOPT_CERTINFO, 1)
            try set(CURLOPT_SSL_SESSIONID_CACHE, 0)
        }

        try set(CURLOPT_ACCEPT_ENCODING, string: "") // decoded bytes count against the cap
        try configureMethodAndBody(spec)
        try configureAuthentication(spec)
        try configureHeaders(spec)

        let me = Unmanaged.passUnretained(self).toOpaque()
        try check(
            ccurl_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION) { data, size, count, userdata in
                guard let userdata else { return 0 }
                let transfer = Unmanaged<CurlTransfer>.fromOpaque(userdata).takeUnretainedValue()
                return transfer.receiveBody(UnsafeRawBufferPointer(start: data, count: size * count))
            })
        try set(CURLOPT_WRITEDATA, pointer: me)
        try check(
            ccurl_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION) { data, size, count, userdata in
                guard let userdata else { return 0 }
                let transfer = Unmanaged<CurlTransfer>.fromOpaque(userdata).takeUnretainedValue()
                return transfer.receiveHeader(UnsafeRawBufferPointer(start: data, count: size * count))
            })
        try set(CURLOPT_HEADERDATA, pointer: me)
    }

    /// Connect (and handshake) on a new connection that nobody reuses, then stop: nothing is sent.
    private func connectOnly() throws(HTTPError) {
        try set(CURLOPT_CONNECT_ONLY, 1)
        try set(CURLOPT_FRESH_CONNECT, 1)
        try set(CURLOPT_FORBID_REUSE, 1)
    }

    /// libcurl's OpenSSL backend reports the negotiated version and cipher only as an info
    /// line ("SSL connection using TLSv1.3 / …", from SSL_get_version and SSL_get_cipher);
    /// the debug callback keeps that one line and drops every other (headers never reach it:
    /// only handshake-only transfers set this).
    private func captureTLSSummary() throws(HTTPError) {
        try set(CURLOPT_VERBOSE, 1)
        try check(
            ccurl_easy_setopt_debug_callback(easy) { _, type, data, size, userdata in
                guard type == CURLINFO_TEXT, let data, let userdata else { return 0 }
                let transfer = Unmanaged<CurlTransfer>.fromOpaque(userdata).takeUnretainedValue()
                let prefix = "SSL connection using "
                guard transfer.tlsSummary == nil, size > prefix.utf8.count, size < 512 else { return 0 }
                let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
                if line.hasPrefix(prefix) { transfer.tlsSummary = String(line.dropFirst(prefix.count)).trimmingWhitespace().filter { $0 != "\n" } }
                return 0
            })
        try set(CURLOPT_DEBUGDATA, pointer: Unmanaged.passUnretained(self).toOpaque())
    }

    private func configureMethodAndBody(_ spec: TransferSpec) throws(HTTPError) {
        let method = spec.method.uppercased()
        let sendsBody = !spec.body.isEmpty || ["POST", "PUT", "PATCH"].contains(method)
        if sendsBody {
            // POSTFIELDS is not copied: the buffer lives until this transfer is released.
            let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(spec.body.count, 1))
            _ = buffer.initialize(from: spec.body)
            requestBody = buffer
            try set(CURLOPT_POSTFIELDSIZE_LARGE, offset: curl_off_t(spec.body.count))
            try set(CURLOPT_POSTFIELDS, pointer: UnsafeRawPointer(buffer.baseAddress))
            if method != "POST" { try set(CURLOPT_CUSTOMREQUEST, string: method) }
        } else if method == "HEAD" {
            try set(CURLOPT_NOBODY, 1)
        } else if method == "GET" {
            try set(CURLOPT_HTTPGET, 1)
        } else {
            try set(CURLOPT_CUSTOMREQUEST, string: method)
        }
    }

    private func configureAuthentication(_ spec: TransferSpec) throws(HTTPError) {
        switch spec.authentication {
        case .none, .bearer:
            return // bearer travels as a header, see configureHeaders
        case .basic(let user, let password):
            try set(CURLOPT_HTTPAUTH, Int(ccurl_auth_basic()))
            try set(CURLOPT_USERNAME, string: user)
            try set(CURLOPT_PASSWORD, string: password)
        case .ntlm(let user, let domain, let password):
            try set(CURLOPT_HTTPAUTH, Int(ccurl_auth_ntlm()))
            let name = domain.map { $0.isEmpty ? user : "\($0)\\\(user)" } ?? user
            try set(CURLOPT_USERNAME, string: name)
            try set(CURLOPT_PASSWORD, string: password)
            // NTLM authenticates a connection; HTTP/2 (IIS answers HTTP_1_1_REQUIRED) breaks it.
            try set(CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1)
        case .negotiate(let user, let password):
            try set(CURLOPT_HTTPAUTH, Int(ccurl_auth_negotiate()))
            try set(CURLOPT_USERNAME, string: user)
            try set(CURLOPT_PASSWORD, string: password)
            try set(CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1)
        }
        if spec.requireHTTP11 { try set(CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1) }
    }

    private func configureHeaders(_ spec: TransferSpec) throws(HTTPError) {
        var lines = spec.headers.map { field in
            // "Name;" is libcurl's way to send a header with an empty value.
            field.value.isEmpty ? "\(field.name);" : "\(field.name): \(field.value)"
        }
        if case .bearer(let token) = spec.authentication {
            lines.append("Authorization: Bearer \(token)")
        }
        if !lines.isEmpty { try set(CURLOPT_HTTPHEADER, list: lines) }
    }

    private func check(_ code: CURLcode) throws(HTTPError) {
        guard code == CURLE_OK else {
            throw .transport(code: Int(code.rawValue), detail: String(cString: sw_curl_easy_strerror(code)))
        }
    }

    private func set(_ option: CURLoption, _ value: Int) throws(HTTPError) {
        try check(ccurl_easy_setopt_long(easy, option, value))
    }

    private func set(_ option: CURLoption, offset: curl_off_t) throws(HTTPError) {
        try check(ccurl_easy_setopt_off_t(easy, option, offset))
    }

    private func set(_ option: CURLoption, pointer: UnsafeRawPointer?) throws(HTTPError) {
        try check(ccurl_easy_setopt_pointer(easy, option, pointer))
    }

    /// libcurl copies string options, so a temporary C string is enough.
    private func set(_ option: CURLoption, string: String) throws(HTTPError) {
        let code = string.withCString { ccurl_easy_setopt_pointer(easy, option, $0) }
        try check(code)
    }

    /// A blob libcurl copies (CURL_BLOB_COPY), so the bytes need not outlive the call.
    private func set(_ option: CURLoption, blob bytes: [UInt8]) throws(HTTPError) {
        var bytes = bytes
        let code = bytes.withUnsafeMutableBytes { raw in
            var blob = curl_blob(data: raw.baseAddress, len: raw.count, flags: UInt32(CURL_BLOB_COPY))
            return withUnsafePointer(to: &blob) { ccurl_easy_setopt_pointer(easy, option, $0) }
        }
        try check(code)
    }

    /// slists are not copied: they are kept until the transfer is released.
    private func set(_ option: CURLoption, list: [String]) throws(HTTPError) {
        var head: UnsafeMutablePointer<curl_slist>?
        for item in list {
            guard let next = sw_curl_slist_append(head, item) else {
                if let head { sw_curl_slist_free_all(head) }
                throw .transport(code: Int(CURLE_OUT_OF_MEMORY.rawValue), detail: "curl_slist_append failed")
            }
            head = next
        }
        guard let head else { return }
        slists.append(head)
        try set(option, pointer: UnsafeRawPointer(head))
    }

    // MARK: Callbacks (driver thread)

    private func receiveBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard responseBody.count + bytes.count <= limit else {
            exceededLimit = true
            return 0 // anything but bytes.count aborts with CURLE_WRITE_ERROR
        }
        responseBody.append(contentsOf: bytes)
        return bytes.count
    }

    private func receiveHeader(_ bytes: UnsafeRawBufferPointer) -> Int {
        headerBytes += bytes.count
        guard headerBytes <= limit else {
            exceededLimit = true
            return 0
        }
        var end = bytes.count
        while end > 0, bytes[end - 1] == UInt8(ascii: "\n") || bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        // Header values are ISO-8859-1 in theory and UTF-8 in practice; repair, never fail.
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<end]), as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            responseHeaders = HTTPHeaders() // a new response (redirect, 100, auth round) starts
        } else if let first = line.first, first == " " || first == "\t", !responseHeaders.fields.isEmpty {
            // obsolete line folding: continues the previous field
            let last = responseHeaders.fields.count - 1
            responseHeaders.fields[last].value += " " + line.trimmingWhitespace()
        } else if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon]).trimmingWhitespace()
            let value = String(line[line.index(after: colon)...]).trimmingWhitespace()
            responseHeaders.add(name, value)
        }
        return bytes.count
    }

    // MARK: Completion (driver thread)

    /// Installs the continuation that `finish` resumes; call before submitting.
    func attach(_ continuation: CheckedContinuation<TransferResult, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    /// Marks the transfer cancelled; the driver stops it (or never starts it).
    func markCancelled() {
        state.withLock { $0.cancelled = true }
    }

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Reads everything the caller needs from the handle and resumes the waiting task once.
    func finish(code: CURLcode, cancelled: Bool = false) {
        var result = TransferResult()
        result.code = code
        result.cancelled = cancelled
        result.exceededLimit = exceededLimit
        result.detail =
            errorBuffer.pointee != 0
            ? String(cString: errorBuffer) : String(cString: sw_curl_easy_strerror(code))
        var long = 0
        if ccurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &long) == CURLE_OK { result.status = long }
        if ccurl_easy_getinfo_long(easy, CURLINFO_OS_ERRNO, &long) == CURLE_OK { result.osErrno = long }
        var url: UnsafePointer<CChar>?
        if ccurl_easy_getinfo_string(easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK, let url {
            result.effectiveURL = String(cString: url)
        }
        result.headers = responseHeaders
        result.body = responseBody
        if wantsCertificate { result.leafCertificate = readLeafCertificate() }
        result.connection = readConnection(certificate: result.leafCertificate["Cert"])
        result.tlsSummary = tlsSummary
        var micros: curl_off_t = 0
        if ccurl_easy_getinfo_off_t(easy, CURLINFO_CONNECT_TIME_T, &micros) == CURLE_OK { result.connectMicros = Int(micros) }
        if ccurl_easy_getinfo_off_t(easy, CURLINFO_APPCONNECT_TIME_T, &micros) == CURLE_OK { result.tlsMicros = Int(micros) }
        let continuation = state.withLock { state in
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(returning: result)
    }

    private func readConnection(certificate pem: String?) -> HTTPConnectionInfo {
        var info = HTTPConnectionInfo()
        var long = 0
        if ccurl_easy_getinfo_long(easy, CURLINFO_LOCAL_PORT, &long) == CURLE_OK { info.localPort = long }
        if ccurl_easy_getinfo_long(easy, CURLINFO_PRIMARY_PORT, &long) == CURLE_OK { info.remotePort = long }
        if ccurl_easy_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &long) == CURLE_OK { info.newConnections = long }
        var ip: UnsafePointer<CChar>?
        if ccurl_easy_getinfo_string(easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK, let ip { info.remoteAddress = String(cString: ip) }
        if let pem { info.tlsServerEndPoint = ServerCertificate.tlsServerEndPoint(pem: pem) }
        return info
    }

    /// CURLINFO_CERTINFO lists the chain leaf first, as "Name:value" lines.
    private func readLeafCertificate() -> [String: String] {
        var raw: UnsafeMutableRawPointer?
        guard ccurl_easy_getinfo_pointer(easy, CURLINFO_CERTINFO, &raw) == CURLE_OK, let raw else { return [:] }
        let info = raw.assumingMemoryBound(to: curl_certinfo.self).pointee
        guard info.num_of_certs > 0, let chain = info.certinfo else { return [:] }
        var fields: [String: String] = [:]
        var node = chain[0]
        while let entry = node {
            let line = String(cString: entry.pointee.data)
            if let colon = line.firstIndex(of: ":") {
                fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
            }
            node = entry.pointee.next
        }
        return fields
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isSpace($0) }),
            let end = lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(self[start...end])
    }
}

/// Loads libcurl on first use (dlopen in the C shim, which also runs curl_global_init once), so
/// a process that never uses the network does not map it. Call before the first libcurl call
/// whose failure should say why; the shim's wrappers themselves never crash without libcurl.
func loadCurl() throws(HTTPError) {
    if let reason = sw_curl_load() {
        throw .invalidConfiguration(
            reason: "libcurl (libcurl.so.4) cannot be loaded: \(String(cString: reason)); "
                + "install libcurl4 (Debian, Ubuntu: apt-get install libcurl4)")
    }
}
