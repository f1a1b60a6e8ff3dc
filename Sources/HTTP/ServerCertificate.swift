import CLibcryptoShim
import ExtrasBase64

#if canImport(Glibc)
    import Glibc
#endif

/// The leaf certificate a server presented, as read from libcurl's certinfo.
struct ServerCertificate {
    var sha256: String
    var publicKeySHA256Base64: String
    var subject: String
    var issuer: String
    var notAfter: String
    var notAfterEpoch: Int64
    var pem: String
    /// The DNS names of the Subject Alternative Name extension, as libcurl's certinfo lists it
    /// ("X509v3 Subject Alternative Name:DNS:a, DNS:b").
    var subjectAltNames: [String]

    /// `fields` are certinfo's "Subject", "Issuer", "Cert" (PEM) entries for the leaf.
    init?(certinfo fields: [String: String]) {
        guard let pem = fields["Cert"], pem.contains("-----BEGIN CERTIFICATE-----") else { return nil }
        var facts = swcrypto_certificate_facts()
        let status = pem.withCString { swcrypto_certificate_inspect($0, strlen($0), &facts) }
        guard status == 0 else { return nil }
        sha256 = withUnsafeBytes(of: facts.certificate_sha256) { Self.hex($0) }
        publicKeySHA256Base64 = withUnsafeBytes(of: facts.public_key_sha256) { Self.base64($0) }
        subject = fields["Subject"] ?? ""
        issuer = fields["Issuer"] ?? ""
        notAfter = Self.iso8601(facts.not_after)
        notAfterEpoch = facts.not_after
        subjectAltNames = (fields["X509v3 Subject Alternative Name"] ?? "").split(separator: ",").compactMap { entry in
            let item = entry.split(separator: ":", maxSplits: 1).map { String($0).trimmingWhitespace() }
            return item.count == 2 && item[0] == "DNS" ? item[1] : nil
        }
        self.pem = pem.hasSuffix("\n") ? pem : pem + "\n"
    }

    /// RFC 5929 tls-server-end-point: the DER certificate hashed with its signature's hash
    /// (SHA-256 for MD5 and SHA-1), as Windows and Exchange's Extended Protection compute it.
    static func tlsServerEndPoint(pem: String) -> [UInt8]? {
        var digest = [UInt8](repeating: 0, count: 64)
        var length = 0
        let status = pem.withCString { swcrypto_tls_server_end_point($0, strlen($0), &digest, &length) }
        return status == 0 ? Array(digest.prefix(length)) : nil
    }

    /// Accepts "AB:CD…" or "abcd…" so a pin copied from another tool still matches.
    func matches(pin: String) -> Bool {
        pin.lowercased().filter { $0 != ":" && $0 != " " } == sha256
    }

    private static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        let digits = Array("0123456789abcdef")
        var text = ""
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return text
    }

    /// Standard base64 with padding (RFC 4648 §4), as CURLOPT_PINNEDPUBLICKEY's "sha256//" expects.
    static func base64(_ bytes: UnsafeRawBufferPointer) -> String {
        Base64.encodeToString(bytes: bytes)
    }

    private static func iso8601(_ seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))Z"
    }
}
