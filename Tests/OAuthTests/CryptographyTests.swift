import Crypto
import Cryptography
import Testing
import _CryptoExtras

/// Cryptography's SHA-256 and RS256 check (both libcrypto) against swift-crypto (BoringSSL)
/// and the standard's test vectors (FIPS 180-4 / NIST CAVP).
@Suite struct CryptographyTests {
    func hex(_ bytes: [UInt8]) -> String { bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func sha256KnownAnswers(_ input: String, _ digest: String) {
        #expect(Cryptography.SHA256.hash(input.utf8).map(hex) == digest)
    }

    @Test func sha256OfAMillionAs() {
        #expect(
            Cryptography.SHA256.hash(repeatElement(UInt8(ascii: "a"), count: 1_000_000)).map(hex)
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Every length around the 55/56/64-byte padding edges matches BoringSSL.
    @Test func sha256MatchesSwiftCryptoForEveryLength() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...300 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let expected = Array(Crypto.SHA256.hash(data: bytes))
            #expect(Cryptography.SHA256.hash(bytes) == expected, "length \(length)")
        }
    }

    static let key = try! _RSA.Signing.PrivateKey(keySize: .bits2048)

    func publicKey(_ key: _RSA.Signing.PrivateKey) throws -> RSAPublicKey {
        let primitives = try key.publicKey.getKeyPrimitives()
        return try RSAPublicKey(modulus: Array(primitives.modulus), exponent: Array(primitives.publicExponent))
    }

    func sign(_ message: [UInt8], with key: _RSA.Signing.PrivateKey = key) throws -> [UInt8] {
        Array(try key.signature(for: Crypto.SHA256.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
    }

    @Test func rs256SignatureFromBoringSSLVerifiesAndEveryAlterationFails() throws {
        #expect(RSAPublicKey.unavailableReason == nil)
        let key = try publicKey(Self.key)
        #expect(key.bitCount == 2048)
        let message = Array("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9".utf8)
        let signature = try sign(message)
        #expect(key.isValidSHA256Signature(signature, for: message))
        var otherMessage = message
        otherMessage[otherMessage.count - 1] ^= 1
        #expect(!key.isValidSHA256Signature(signature, for: otherMessage))
        for index in [0, 100, signature.count - 1] {
            var flipped = signature
            flipped[index] ^= 0x01
            #expect(!key.isValidSHA256Signature(flipped, for: message), "bit flipped at \(index)")
        }
        #expect(!key.isValidSHA256Signature(Array(signature.dropFirst()), for: message))
        #expect(!key.isValidSHA256Signature([0] + signature, for: message))
        #expect(!key.isValidSHA256Signature([], for: message))
        // A signature by another key, and one over the SHA-256 of another text.
        #expect(!key.isValidSHA256Signature(try sign(message, with: try _RSA.Signing.PrivateKey(keySize: .bits2048)), for: message))
        #expect(!key.isValidSHA256Signature(try sign(Array("other".utf8)), for: message))
    }

    @Test func aLeadingZeroInTheModulusIsTheSameKey() throws {
        let primitives = try Self.key.publicKey.getKeyPrimitives()
        let padded = try RSAPublicKey(modulus: [0] + Array(primitives.modulus), exponent: [0, 0] + Array(primitives.publicExponent))
        #expect(padded == (try publicKey(Self.key)))
        let message = Array("payload".utf8)
        #expect(padded.isValidSHA256Signature(try sign(message), for: message))
    }

    @Test func weakOrAbsurdKeysAreRefused() throws {
        let primitives = try Self.key.publicKey.getKeyPrimitives()
        let n = Array(primitives.modulus)
        #expect(throws: RSAPublicKey.KeyError.unsupportedSize(bits: 1024)) { try RSAPublicKey(modulus: Array(n.prefix(128)), exponent: [1, 0, 1]) }
        #expect(throws: RSAPublicKey.KeyError.unsupportedSize(bits: 0)) { try RSAPublicKey(modulus: [0, 0], exponent: [1, 0, 1]) }
        #expect(throws: RSAPublicKey.KeyError.unsupportedSize(bits: 16392)) { try RSAPublicKey(modulus: [UInt8](repeating: 0xFF, count: 2049), exponent: [3]) }
        for exponent: [UInt8] in [[1], [0, 1], [2], [1, 0, 0], [], [UInt8](repeating: 1, count: 9)] {
            #expect(throws: RSAPublicKey.KeyError.unsupportedExponent) { try RSAPublicKey(modulus: n, exponent: exponent) }
        }
    }
}
