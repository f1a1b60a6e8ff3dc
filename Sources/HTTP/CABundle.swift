import CCurlShim

#if canImport(Glibc)
    import Glibc
#endif

/// Trust anchors for a client with an extra CA file: the system's plus that file, handed to
/// libcurl in memory (CURLOPT_CAINFO_BLOB, libcurl >= 7.77): no temporary file that a
/// `kill -9` could leave behind.
///
/// CAINFO (and CAINFO_BLOB) replace libcurl's default bundle, so naming only the extra file
/// could drop the system anchors. Two ways keep both:
/// - `caPath` set: the blob is the extra file and CAPATH the system's hashed directory. OpenSSL
///   looks CAPATH entries up lazily, so a handshake parses one small blob, not the whole
///   bundle (50 new connections: 0.4 s instead of 1.3 s on the driver thread).
/// - `caPath` nil, when there is no hashed system directory: one combined blob, system bundle first.
final class CABundle: Sendable {
    /// For CURLOPT_CAINFO_BLOB (PEM).
    let pem: [UInt8]
    /// For CURLOPT_CAPATH, or nil when `pem` holds the system anchors too.
    let caPath: String?

    init(extraFile: String, useSystemDirectory: Bool = true) throws(HTTPError) {
        guard let extra = LocalFiles.readUTF8(extraFile) else {
            throw .invalidConfiguration(reason: "cannot read the CA file \(extraFile)")
        }
        guard extra.contains("-----BEGIN CERTIFICATE-----") else {
            throw .invalidConfiguration(reason: "the CA file \(extraFile) holds no PEM certificate")
        }
        caPath = useSystemDirectory ? CABundle.hashedSystemDirectory() : nil
        var contents = extra
        if caPath == nil, let system = CABundle.systemBundlePath().flatMap(LocalFiles.readUTF8) {
            contents = system + (system.hasSuffix("\n") ? "" : "\n") + extra
        }
        pem = Array((contents + "\n").utf8)
    }

    /// The bundle libcurl uses by default (CURLINFO_CAINFO, libcurl >= 7.84).
    static func systemBundlePath() -> String? {
        defaultLocation(CURLINFO_CAINFO) ?? existing("/etc/ssl/certs/ca-certificates.crt")
    }

    /// libcurl's default CAPATH, if it holds OpenSSL hash links ("5ad8a5d6.0").
    static func hashedSystemDirectory() -> String? {
        guard let directory = defaultLocation(CURLINFO_CAPATH) ?? existing("/etc/ssl/certs"),
            let names = LocalFiles.contentsOfDirectory(directory)
        else { return nil }
        let hashed = names.contains { name in
            let parts = name.split(separator: ".")
            return parts.count == 2 && parts[0].count == 8 && parts[0].allSatisfy(\.isHexDigit)
                && parts[1].allSatisfy(\.isNumber)
        }
        return hashed ? directory : nil
    }

    private static func defaultLocation(_ info: CURLINFO) -> String? {
        guard let easy = sw_curl_easy_init() else { return nil }
        defer { sw_curl_easy_cleanup(easy) }
        var value: UnsafePointer<CChar>?
        guard ccurl_easy_getinfo_string(easy, info, &value) == CURLE_OK, let value else { return nil }
        return String(cString: value)
    }

    private static func existing(_ path: String) -> String? {
        LocalFiles.exists(path) ? path : nil
    }
}

/// The few file reads the CA bundle needs, on POSIX calls: Foundation's would load
/// libFoundation and ICU into every process at start-up (about 6 MiB and 4 ms).
enum LocalFiles {
    /// The whole file as UTF-8 (a leading byte order mark dropped), or nil when it cannot be
    /// read or is not UTF-8, like `String(contentsOfFile:encoding: .utf8)`.
    static func readUTF8(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil // EISDIR for a directory, EIO, ...
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        let body = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? bytes[3...] : bytes[...]
        return String(validating: body, as: UTF8.self)
    }

    /// Names in `directory` (without "." and ".."), or nil when it cannot be listed.
    static func contentsOfDirectory(_ directory: String) -> [String]? {
        guard let stream = opendir(directory) else { return nil }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Whether `path` names something (symbolic links followed).
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }
}
