import CLibcryptoShim

/// SHA-256 (FIPS 180-4) from OpenSSL's libcrypto, the library the same sign-in already loads
/// for its RS256 checks and libcurl for TLS: no hash of our own to get wrong.
public enum SHA256 {
    public static let byteCount = 32

    /// The digest, or nil when libcrypto cannot be loaded (`RSAPublicKey.unavailableReason` says why).
    public static func hash(_ bytes: some Sequence<UInt8>) -> [UInt8]? {
        let input = Array(bytes)
        var digest = [UInt8](repeating: 0, count: byteCount)
        let status = input.withUnsafeBufferPointer { data in
            digest.withUnsafeMutableBufferPointer { swcrypto_sha256(data.baseAddress, data.count, $0.baseAddress) }
        }
        return status == 0 ? digest : nil
    }
}
