import Cryptography

/// RFC 7636 proof key: a random verifier kept here and its S256 challenge sent in the
/// authorization URL, so an intercepted code is useless without the verifier.
public struct PKCE: Sendable {
    public let verifier: String
    public var challenge: String { Self.challenge(for: verifier) }
    public static let method = "S256"

    public init() {
        verifier = RandomToken.make(bytes: 32)  // 43 characters, within RFC 7636's 43...128
    }

    public init(verifier: String) { self.verifier = verifier }

    public static func challenge(for verifier: String) -> String {
        Base64URL.encode(SHA256.hash(verifier.utf8))
    }
}

/// Unguessable values for state, nonce and the PKCE verifier.
public enum RandomToken {
    public static func make(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
