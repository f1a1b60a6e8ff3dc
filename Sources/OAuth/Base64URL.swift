import ExtrasBase64

/// base64url without padding (RFC 4648 §5), as JWTs (RFC 7515 §2) and PKCE use it, through
/// swift-extras-base64. Strict: only the URL alphabet, no `=` anywhere, and only the canonical
/// encoding (unused trailing bits zero), so one token has exactly one spelling.
public enum Base64URL {
    static let options: Base64.EncodingOptions = [.base64UrlAlphabet, .omitPaddingCharacter]

    public static func encode(_ bytes: [UInt8]) -> String {
        Base64.encodeToString(bytes: bytes, options: options)
    }

    /// nil for anything but canonical unpadded base64url.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        // The library skips '=' in the last group and accepts leftover bits; JWS allows neither.
        guard !utf8.contains(UInt8(ascii: "=")),
            let bytes = try? Base64.decode(bytes: utf8, options: [.base64UrlAlphabet, .omitPaddingCharacter]),
            Base64.encodeToBytes(bytes: bytes, options: options) == utf8
        else { return nil }
        return bytes
    }
}
