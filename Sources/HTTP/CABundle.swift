import CCurl
import CCurlShim
import Foundation

/// Trust anchors for a client with an extra CA file: the system's plus that file.
///
/// CURLOPT_CAINFO replaces libcurl's default bundle, so naming only the extra file could
/// drop the system anchors. Two ways keep both:
/// - `caPath` set: CAINFO is (a private copy of) the extra file and CAPATH the system's hashed
///   directory. OpenSSL looks CAPATH entries up lazily, so a handshake parses one file, not
///   the whole bundle (50 new connections: 0.4 s instead of 1.3 s on the driver thread).
/// - `caPath` nil, when there is no hashed system directory: CAINFO is one combined file,
///   system bundle first.
final class CABundle: Sendable {
    /// For CURLOPT_CAINFO.
    let path: String
    /// For CURLOPT_CAPATH, or nil when `path` holds the system anchors too.
    let caPath: String?
    private let directory: String

    init(extraFile: String, useSystemDirectory: Bool = true) throws(HTTPError) {
        let extra: String
        do {
            extra = try String(contentsOfFile: extraFile, encoding: .utf8)
        } catch {
            throw .invalidConfiguration(reason: "cannot read the CA file \(extraFile)")
        }
        guard extra.contains("-----BEGIN CERTIFICATE-----") else {
            throw .invalidConfiguration(reason: "the CA file \(extraFile) holds no PEM certificate")
        }

        caPath = useSystemDirectory ? CABundle.hashedSystemDirectory() : nil
        var contents = extra
        if caPath == nil, let system = CABundle.systemBundlePath().flatMap({ try? String(contentsOfFile: $0, encoding: .utf8) }) {
            contents = system + (system.hasSuffix("\n") ? "" : "\n") + extra
        }

        let template = FileManager.default.temporaryDirectory.appendingPathComponent("syncwizard-ca.XXXXXX").path
        var buffer = Array(template.utf8CString)
        guard let made = mkdtemp(&buffer) else {
            throw .invalidConfiguration(reason: "cannot create a temporary directory for the CA bundle")
        }
        directory = String(cString: made)
        path = directory + "/ca-bundle.pem"
        do {
            try (contents + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw .invalidConfiguration(reason: "cannot write the CA bundle")
        }
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The bundle libcurl uses by default (CURLINFO_CAINFO, libcurl >= 7.84).
    static func systemBundlePath() -> String? {
        defaultLocation(CURLINFO_CAINFO) ?? existing("/etc/ssl/certs/ca-certificates.crt")
    }

    /// libcurl's default CAPATH, if it holds OpenSSL hash links ("5ad8a5d6.0").
    static func hashedSystemDirectory() -> String? {
        guard let directory = defaultLocation(CURLINFO_CAPATH) ?? existing("/etc/ssl/certs"),
              let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        let hashed = names.contains { name in
            let parts = name.split(separator: ".")
            return parts.count == 2 && parts[0].count == 8 && parts[0].allSatisfy(\.isHexDigit)
                && parts[1].allSatisfy(\.isNumber)
        }
        return hashed ? directory : nil
    }

    private static func defaultLocation(_ info: CURLINFO) -> String? {
        ensureCurlGlobalInit()
        guard let easy = curl_easy_init() else { return nil }
        defer { curl_easy_cleanup(easy) }
        var value: UnsafePointer<CChar>?
        guard ccurl_easy_getinfo_string(easy, info, &value) == CURLE_OK, let value else { return nil }
        return String(cString: value)
    }

    private static func existing(_ path: String) -> String? {
        FileManager.default.fileExists(atPath: path) ? path : nil
    }
}
