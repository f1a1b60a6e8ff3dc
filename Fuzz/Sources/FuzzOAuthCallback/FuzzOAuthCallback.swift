// Fuzz target (c): what comes back from an identity provider: the redirect to the loopback
// listener (or the URL a user pastes), its query encoding, base64url, JWKS documents and id_tokens.
//
// The input is read several ways at once: as a request target / pasted URL, as a query string,
// as base64url, as a JWKS document, as a compact id_token (which must never verify: the key is
// made at start-up), and, when it is a JSON object with an "iss" member, as id_token claims that
// the fuzzer signs with that key, so the claim checks behind the signature are reached too.
// Any broken invariant is a fatalError, which libFuzzer reports as a crash.

import Crypto
import Foundation
import FuzzSupport
import OAuth
import RPCCore
import WizardContract
import _CryptoExtras

// MARK: - Fixed keys and expectations

struct Signer: Sendable {
    let privateKey: _RSA.Signing.PrivateKey
    let keys: [JSONWebKey]
    let jwks: [UInt8]

    init() {
        // swift-crypto 3.12.3 leaks 16 bytes per key generation (withBignumPointer clears its
        // BIGNUM with BN_clear, never frees it): keep LeakSanitizer quiet about that one.
        privateKey = withoutLeakChecks { try! _RSA.Signing.PrivateKey(keySize: .bits2048) }
        let primitives = try! privateKey.publicKey.getKeyPrimitives()
        let jwk: JSONValue = [
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "fuzz-key-1",
            "n": .string(Base64URL.encode(Array(primitives.modulus))),
            "e": .string(Base64URL.encode(Array(primitives.publicExponent))),
        ]
        jwks = JSONWriter.bytes(["keys": [jwk]])
        keys = try! JWKS.parse(jwks)
    }

    func sign(_ signingInput: [UInt8]) -> [UInt8] {
        Array(try! privateKey.signature(for: SHA256.hash(data: signingInput), padding: .insecurePKCS1v1_5).rawRepresentation)
    }
}

/// Runs `body` with LeakSanitizer's allocation tracking off, when LeakSanitizer is linked in.
func withoutLeakChecks<T>(_ body: () -> T) -> T {
    typealias Toggle = @convention(c) () -> Void
    let handle = dlopen(nil, RTLD_NOW)
    let disable = dlsym(handle, "__lsan_disable").map { unsafeBitCast($0, to: Toggle.self) }
    let enable = dlsym(handle, "__lsan_enable").map { unsafeBitCast($0, to: Toggle.self) }
    disable?()
    defer { enable?() }
    return body()
}

/// Made once per process (RSA key generation takes a while).
let signer = Signer()

let issuer = "https://login.contoso.test/3f2b1c0d-tenant/v2.0"
let clientID = "fuzz-client-id"
let nonce = "n-0S6_WzA2Mj"
let now = 1_700_000_000.0

let singleTenant = IDTokenExpectations(issuer: issuer, audience: clientID, nonce: nonce)
/// Microsoft's multi-tenant form: any issuer whose tenant matches the token's tid.
let multiTenant = IDTokenExpectations(
    issuer: nil,
    issuerCheck: { iss, claims in
        guard let tid = claims["tid"]?.stringValue else { return false }
        return iss == "https://login.microsoftonline.test/\(tid)/v2.0"
    }, audience: clientID, nonce: nil)

let defaultHeader = Array(#"{"alg":"RS256","kid":"fuzz-key-1","typ":"JWT"}"#.utf8)

// MARK: - Pieces

func checkCallback(_ text: String) {
    let direct = CallbackChecks.parse(text)
    invariant(direct == referenceCallback(text), "AuthorizationCallback.parse reads \(escaped(text)) unlike a byte-wise URL parser")
    // The same answer as a request target and as the URL a user pastes.
    if text.hasPrefix("/"), text.utf8.count < 16000 {
        let pasted = CallbackChecks.parse("http://127.0.0.1:49152" + text)
        invariant(pasted == direct, "callback: target \(escaped(text)) and the pasted URL parse differently")
    }
    if text.utf8.count < 16000 {
        let target = CallbackChecks.parse("/?" + text)
        let pasted = CallbackChecks.parse("http://localhost:8080/?" + text)
        invariant(pasted == target, "callback: query \(escaped(text)) as target and as pasted URL parse differently")
        if case .success(.error(let error, let description, _)) = target {
            checkPage(description ?? error)
        }
    }
}

/// SignInPage puts a provider's error text into the HTML page the browser shows: it must arrive
/// escaped (no markup characters; '&' only as the start of the escapes it writes).
func checkPage(_ message: String) {
    let empty = Array(SignInPage.render(title: "Sign-in failed", message: "", ok: false).utf8)
    let page = Array(SignInPage.render(title: "Sign-in failed", message: message, ok: false).utf8)
    let marker = Array("<p></p>".utf8)
    guard let at = (0...(empty.count - marker.count)).first(where: { Array(empty[$0..<$0 + marker.count]) == marker }) else {
        violated("SignInPage template changed: no <p></p>")
    }
    let head = empty[..<(at + 3)]
    let tail = empty[(at + 3)...]
    invariant(
        page.starts(with: head) && page.count >= head.count + tail.count && Array(page.suffix(tail.count)) == Array(tail),
        "SignInPage: the message changed the page outside its paragraph")
    let middle = Array(page[head.count..<(page.count - tail.count)])
    let entities = ["&lt;", "&gt;", "&amp;", "&quot;", "&#39;", "&apos;"].map { Array($0.utf8) }
    for (i, byte) in middle.enumerated() {
        switch byte {
        case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\""), UInt8(ascii: "'"):
            violated("SignInPage leaves a raw '\(Character(Unicode.Scalar(byte)))' in the page for the message \(escaped(message)): \(escaped(middle))")
        case UInt8(ascii: "&"):
            invariant(
                entities.contains { middle[i...].starts(with: $0) }, "SignInPage leaves a raw '&' for the message \(escaped(message)): \(escaped(middle))")
        default: break
        }
    }
}

/// application/x-www-form-urlencoded as a browser splits it: on the bytes '&' and '=', with
/// strict percent decoding (exactly two hex digits).
func referenceQuery(_ text: String) -> [String: String]? {
    func decode(_ bytes: ArraySlice<UInt8>) -> String? {
        var out: [UInt8] = []
        var i = bytes.startIndex
        while i < bytes.endIndex {
            switch bytes[i] {
            case UInt8(ascii: "+"):
                out.append(0x20)
                i += 1
            case UInt8(ascii: "%"):
                // Two hex digits exactly (a sign is not a digit: "%+B" is malformed).
                let isHex = { (b: UInt8) in (0x30...0x39).contains(b) || (0x41...0x46).contains(b & 0xDF) }
                guard i + 2 < bytes.endIndex, isHex(bytes[i + 1]), isHex(bytes[i + 2]),
                    let value = UInt8(String(decoding: bytes[(i + 1)...(i + 2)], as: UTF8.self), radix: 16)
                else { return nil }
                out.append(value)
                i += 3
            default:
                out.append(bytes[i])
                i += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }
    var result: [String: String] = [:]
    for pair in Array(text.utf8).split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
        let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
        guard let name = decode(parts[0]), let value = decode(parts.count > 1 ? parts[1] : []) else { return nil }
        if result[name] == nil { result[name] = value }
    }
    return result
}

/// AuthorizationCallback.parse as a byte-wise URL parser would do it ('?', '#', '&', '=' bytes).
func referenceCallback(_ target: String) -> Result<AuthorizationCallback, AuthorizationCallback.ParseFailure> {
    let bytes = Array(target.utf8)
    guard bytes.count <= 16384 else { return .failure(.notARedirect("the URL is too long")) }
    var query: ArraySlice<UInt8> = []
    if let q = bytes.firstIndex(of: UInt8(ascii: "?")) { query = bytes[(q + 1)...].prefix { $0 != UInt8(ascii: "#") } }
    if query.isEmpty, let h = bytes.firstIndex(of: UInt8(ascii: "#")) { query = bytes[(h + 1)...] }
    let none = AuthorizationCallback.ParseFailure.notARedirect("the URL carries no authorization answer (no code or error parameter)")
    guard !query.isEmpty, let parameters = referenceQuery(String(decoding: query, as: UTF8.self)) else { return .failure(none) }
    // RFC 6749 §3.1: no parameter twice.
    if let names = FormEncoding.parameterNames(Substring(String(decoding: query, as: UTF8.self))), Set(names).count != names.count {
        return .failure(.notARedirect("a parameter appears more than once (RFC 6749 §3.1)"))
    }
    if let error = parameters["error"], !error.isEmpty {
        return .success(.error(error: error, description: parameters["error_description"], state: parameters["state"]))
    }
    var extra = parameters
    extra["state"] = nil
    if let code = parameters["code"], !code.isEmpty {
        extra["code"] = nil
        return .success(.code(code: code, state: parameters["state"], extra: extra))
    }
    if parameters["admin_consent"] != nil { return .success(.code(code: "", state: parameters["state"], extra: extra)) }
    return .failure(none)
}

func checkForm(_ text: String) {
    let parsed = FormEncoding.parseQuery(Substring(text))
    invariant(
        parsed == referenceQuery(text),
        "FormEncoding.parseQuery splits \(escaped(text)) unlike a byte-wise parser: \(String(describing: parsed)) vs \(String(describing: referenceQuery(text)))"
    )
    // Any string survives encode/decode.
    invariant(FormEncoding.decode(Substring(FormEncoding.encode(text))) == text, "FormEncoding encode/decode round trip fails for \(escaped(text))")
    guard let query = FormEncoding.parseQuery(Substring(text)) else { return }
    let pairs = query.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    let encoded = FormEncoding.encode(pairs)
    invariant(FormEncoding.parseQuery(Substring(encoded)) == query, "FormEncoding: re-encoded query \(escaped(encoded)) parses differently")
}

func checkBase64(_ text: String, _ bytes: [UInt8]) {
    let encoded = Base64URL.encode(bytes)
    invariant(encoded.utf8.count == (bytes.count * 4 + 2) / 3, "Base64URL.encode length")
    invariant(Base64URL.decode(encoded) == bytes, "Base64URL round trip fails for \(escaped(bytes))")
    if let decoded = Base64URL.decode(text) {
        invariant(Base64URL.decode(Base64URL.encode(decoded)) == decoded, "Base64URL decode/encode/decode")
    }
}

func checkJWKS(_ bytes: [UInt8]) {
    do {
        let keys = try JWKS.parse(bytes)
        invariant(!keys.isEmpty, "JWKS.parse returned no keys without throwing")
    } catch {
        invariant(error.kind == .invalidToken, "JWKS error of kind \(error.kind.name)")
        JSONChecks.checkError(error, "JWKS error")
    }
}

func validate(_ token: String, _ expect: IDTokenExpectations) -> Result<JSONObject, RPCError> {
    do throws(RPCError) {
        return .success(try IDTokenValidator.validate(token, keys: signer.keys, expect: expect, now: now))
    } catch {
        invariant(error.kind == .invalidToken, "id_token error of kind \(error.kind.name)")
        JSONChecks.checkError(error, "id_token error", maximumMessageBytes: nil)
        return .failure(error)
    }
}

/// The input as a compact JWT: nothing the fuzzer writes can carry a valid signature.
func checkForeignToken(_ text: String) {
    for expect in [singleTenant, multiTenant] {
        if case .success = validate(text, expect) {
            violated("an id_token not signed by our key was accepted: \(escaped(text))")
        }
    }
}

/// The input as claims (optionally "header JSON\nclaims JSON"), signed with our key.
func checkSignedClaims(_ input: [UInt8]) {
    var header = defaultHeader
    var payload = input
    if let newline = input.firstIndex(of: 0x0A), (try? JSONParser.parse(input[..<newline]))?.objectValue != nil {
        header = Array(input[..<newline])
        payload = Array(input[(newline + 1)...])
    }
    guard let claims = (try? JSONParser.parse(payload))?.objectValue, claims["iss"] != nil else { return }
    let signingInput = Base64URL.encode(header) + "." + Base64URL.encode(payload)
    let signature = signer.sign(Array(signingInput.utf8))
    let token = signingInput + "." + Base64URL.encode(signature)

    var tampered = signature
    tampered[tampered.count - 1] ^= 0x01
    let badSignature = signingInput + "." + Base64URL.encode(tampered)
    let otherPayload = Base64URL.encode(header) + "." + Base64URL.encode(payload + [0x20]) + "." + Base64URL.encode(signature)

    for expect in [singleTenant, multiTenant] {
        if case .success = validate(badSignature, expect) { violated("an id_token with a wrong signature was accepted") }
        if case .success = validate(otherPayload, expect) { violated("an id_token whose payload changed after signing was accepted") }
        guard case .success(let returned) = validate(token, expect) else { continue }
        let value = JSONValue.object(returned)
        invariant(returned == claims, "validate returned other claims than were signed")
        invariant((try? JSONParser.parse(header))?["alg"] == .string("RS256"), "accepted a token whose alg is not RS256: \(escaped(header))")
        guard let iss = value["iss"]?.stringValue else { violated("accepted a token without a string iss") }
        if let expected = expect.issuer { invariant(iss == expected, "accepted the issuer \(escaped(iss))") }
        if let check = expect.issuerCheck { invariant(check(iss, returned), "accepted an issuer the check refuses") }
        let audiences: [String] =
            switch value["aud"] {
            case .string(let a)?: [a]
            case .array(let list)?: list.compactMap(\.stringValue)
            default: []
            }
        invariant(audiences.contains(clientID), "accepted a token for another audience")
        guard case .number(let expText)? = value["exp"], let exp = Double(expText) else { violated("accepted a token without a numeric exp") }
        invariant(now <= exp + expect.leewaySeconds, "accepted an expired token (exp \(expText))")
        if case .number(let nbfText)? = value["nbf"], let nbf = Double(nbfText) {
            invariant(now + expect.leewaySeconds >= nbf, "accepted a token before its nbf \(nbfText)")
        }
        if let expected = expect.nonce { invariant(value["nonce"] == .string(expected), "accepted a token with another nonce") }
    }
}

// MARK: - Entry point

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    _ = signer // make the key before the first input, outside the per-input timing
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOAuthCallback(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: input, as: UTF8.self)

    checkCallback(text)
    checkPage(text)
    checkForm(text)
    checkBase64(text, input)
    checkJWKS(input)
    checkForeignToken(text)
    if input[0] == UInt8(ascii: "{") { checkSignedClaims(input) }
    return 0
}
