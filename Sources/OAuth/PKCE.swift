import Cryptography

/// RFC 7636 proof key: a random verifier kept here and its S256 challenge sent in the
/// authorization URL, so an intercepted code is useless without the verifier.
public struct PKCE: Sendable {
    public let verifier: String
    public let challenge: String
    public static let method = "S256"

    /// nil when libcrypto (the hash) cannot be loaded.
    public init?() {
        self.init(verifier: RandomToken.make(bytes: 32)) // 43 characters, within RFC 7636's 43...128
    }

    public init?(verifier: String) {
        guard let challenge = Self.challenge(for: verifier) else { return nil }
        self.verifier = verifier
        self.challenge = challenge
    }

    public static func challenge(for verifier: String) -> String? {
        SHA256.hash(verifier.utf8).map(Base64URL.encode)
    }
}

/// Unguessable values for state, nonce and the PKCE verifier.
public enum RandomToken {
    public static func make(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
