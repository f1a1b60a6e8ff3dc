import CLibcryptoShim

/// An RSA public key for checking RS256 signatures (id_tokens), with OpenSSL's libcrypto doing
/// the arithmetic (loaded on first use).
public struct RSAPublicKey: Sendable, Equatable {
    public let modulus: [UInt8]
    public let exponent: [UInt8]

    public enum KeyError: Error, Equatable {
        /// Below 2048 bits (forgeable in practice) or above 16384 bits (a denial of service).
        case unsupportedSize(bits: Int)
        /// Even, 1, or longer than 64 bits: no real signing key has such an exponent.
        case unsupportedExponent
    }

    /// `modulus` (n) and `exponent` (e) as unsigned big-endian bytes, as in a JWK.
    public init(modulus: [UInt8], exponent: [UInt8]) throws(KeyError) {
        let n = Array(modulus.drop { $0 == 0 })
        let e = Array(exponent.drop { $0 == 0 })
        let bits = Self.bitLength(n)
        guard bits >= 2048, bits <= 16384 else { throw .unsupportedSize(bits: bits) }
        guard let last = e.last, last & 1 == 1, e.count <= 8, e != [1] else { throw .unsupportedExponent }
        self.modulus = n
        self.exponent = e
    }

    public var bitCount: Int { Self.bitLength(modulus) }

    /// Bits of a big-endian number without leading zero bytes.
    private static func bitLength(_ bytes: [UInt8]) -> Int {
        bytes.isEmpty ? 0 : bytes.count * 8 - bytes[0].leadingZeroBitCount
    }

    /// Why signatures cannot be checked on this machine, or nil when they can.
    public static var unavailableReason: String? {
        swcrypto_load().map { "OpenSSL's libcrypto.so.3 cannot be loaded (\(String(cString: $0))); install libssl3." }
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`. False also when libcrypto is missing:
    /// check `unavailableReason` to tell the two apart.
    public func isValidSHA256Signature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        // A signature is exactly as long as the modulus (RFC 8017 §8.2.2 step 1).
        guard signature.count == modulus.count else { return false }
        return modulus.withUnsafeBufferPointer { n in
            exponent.withUnsafeBufferPointer { e in
                message.withUnsafeBufferPointer { m in
                    signature.withUnsafeBufferPointer { s in
                        swcrypto_rsa_sha256_verify(
                            n.baseAddress, n.count, e.baseAddress, e.count,
                            m.baseAddress, m.count, s.baseAddress, s.count) == 1
                    }
                }
            }
        }
    }
}
