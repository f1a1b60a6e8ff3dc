import Crypto
import Cryptography
import Foundation
import HTTP
import RPCCore
import Synchronization
import Testing
import WizardContract
import _CryptoExtras

@testable import OAuth

@Suite struct PKCEAndEncodingTests {
    @Test func s256ChallengeMatchesRFC7636AppendixB() throws {
        #expect(PKCE.challenge(for: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        let fresh = try #require(PKCE())
        #expect(fresh.verifier.count == 43)
        #expect(fresh.verifier != PKCE()?.verifier)
        #expect(fresh.challenge == PKCE.challenge(for: fresh.verifier))
    }

    @Test func base64URLRoundTripsEveryLength() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(($0 * 37 + 11) % 256) }
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
        #expect(Base64URL.decode("a*b") == nil)
    }

    @Test func formEncodingEscapesAndParses() {
        #expect(
            FormEncoding.encode([("redirect_uri", "http://127.0.0.1:5000"), ("scope", "openid email")])
                == "redirect_uri=http%3A%2F%2F127.0.0.1%3A5000&scope=openid%20email")
        #expect(FormEncoding.parseQuery("a=1+2&b=%C3%A9&a=3&c") == ["a": "1 2", "b": "é", "c": ""])
        #expect(FormEncoding.parseQuery("a=%zz") == nil)
        #expect(FormEncoding.parseQuery("a=%C3") == nil)
        // Two hex digits exactly: a sign is not a digit.
        #expect(FormEncoding.parseQuery("a=%+f") == nil)
        #expect(FormEncoding.parseQuery("a=%-0") == nil)
        #expect(FormEncoding.decode("%41%6a") == "Aj")
    }

    @Test func callbacksAreReadFromTargetsAndPastedURLs() {
        #expect(AuthorizationCallback.parse("/?code=abc&state=xyz") == .success(.code(code: "abc", state: "xyz", extra: [:])))
        #expect(
            AuthorizationCallback.parse("http://127.0.0.1:5000/?state=s&error=access_denied&error_description=User+said+no")
                == .success(.error(error: "access_denied", description: "User said no", state: "s")))
        #expect(AuthorizationCallback.parse("http://localhost:1/#code=f&state=g") == .success(.code(code: "f", state: "g", extra: [:])))
        #expect(
            AuthorizationCallback.parse("/?admin_consent=True&tenant=t&state=s")
                == .success(.code(code: "", state: "s", extra: ["admin_consent": "True", "tenant": "t"])))
        #expect(throws: AuthorizationCallback.ParseFailure.self) { try AuthorizationCallback.parse("/favicon.ico").get() }
        // RFC 6749 §3.1: repeated parameters are not an answer.
        #expect(throws: AuthorizationCallback.ParseFailure.self) { try AuthorizationCallback.parse("/?code=a&state=s&code=b").get() }
        #expect(throws: AuthorizationCallback.ParseFailure.self) { try AuthorizationCallback.parse("/?code=a&state=s&state=t").get() }
        #expect(throws: AuthorizationCallback.ParseFailure.self) { try AuthorizationCallback.parse("/?code=%").get() }
    }

    @Test func pageEscapesProviderTextAndLoadsNothingExternal() {
        let page = SignInPage.render(title: "Sign-in failed", message: "<script>alert(1)</script> & more", ok: false)
        #expect(!page.contains("<script>"))
        #expect(page.contains("&lt;script&gt;"))
        #expect(!page.contains("http://") && !page.contains("https://") && !page.contains("src="))
    }
}

@Suite struct IDTokenTests {
    static let key = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let otherKey = try! _RSA.Signing.PrivateKey(keySize: .bits2048)

    static func jwks(_ key: _RSA.Signing.PrivateKey, kid: String) -> [JSONWebKey] {
        [JSONWebKey(kid: kid, key: publicKey(key))]
    }

    static func publicKey(_ key: _RSA.Signing.PrivateKey) -> RSAPublicKey {
        let primitives = try! key.publicKey.getKeyPrimitives()
        return try! RSAPublicKey(modulus: Array(primitives.modulus), exponent: Array(primitives.publicExponent))
    }

    static func token(
        _ claims: JSONValue, key: _RSA.Signing.PrivateKey = key, kid: String = "k1", alg: String = "RS256",
        extraHeader: JSONObject = [:]
    ) throws -> String {
        var headerObject: JSONObject = ["alg": .string(alg), "kid": .string(kid), "typ": "JWT"]
        for member in extraHeader.members { headerObject[member.key] = member.value }
        let header = Base64URL.encode(JSONWriter.bytes(.object(headerObject)))
        let payload = Base64URL.encode(JSONWriter.bytes(claims))
        let signingInput = header + "." + payload
        let signature = try key.signature(for: Crypto.SHA256.hash(data: Array(signingInput.utf8)), padding: .insecurePKCS1v1_5)
        return signingInput + "." + Base64URL.encode(Array(signature.rawRepresentation))
    }

    let now = 1_800_000_000.0
    var claims: JSONObject {
        [
            "iss": "https://online.superoffice.com", "aud": "client-1", "exp": .int(Int(now) + 3600), "nbf": .int(Int(now) - 10),
            "nonce": "n-1", "sub": "alice",
        ]
    }
    let expect = IDTokenExpectations(issuer: "https://online.superoffice.com", audience: "client-1", nonce: "n-1")

    func check(_ claims: JSONObject, key: _RSA.Signing.PrivateKey = key, alg: String = "RS256") throws -> JSONObject {
        try IDTokenValidator.validate(try Self.token(.object(claims), key: key, alg: alg), keys: Self.jwks(Self.key, kid: "k1"), expect: expect, now: now)
    }

    @Test func acceptsAGoodToken() throws {
        #expect(try check(claims)["sub"] == "alice")
    }

    @Test func rejectsATokenSignedByAnotherKey() {
        #expect(throws: RPCError.self) { try check(claims, key: Self.otherKey) }
    }

    @Test func rejectsATamperedPayload() throws {
        let good = try Self.token(.object(claims))
        let parts = good.split(separator: ".")
        var evil = claims
        evil["sub"] = "mallory"
        let tampered = parts[0] + "." + Base64URL.encode(JSONWriter.bytes(.object(evil))) + "." + parts[2]
        #expect(throws: RPCError.self) { try IDTokenValidator.validate(String(tampered), keys: Self.jwks(Self.key, kid: "k1"), expect: expect, now: now) }
    }

    @Test(arguments: ["aud", "iss", "nonce", "exp", "nbf", "alg"])
    func rejectsEachWrongClaim(_ which: String) {
        var c = claims
        var alg = "RS256"
        switch which {
        case "aud": c["aud"] = "someone-else"
        case "iss": c["iss"] = "https://evil.example"
        case "nonce": c["nonce"] = "n-2"
        case "exp": c["exp"] = .int(Int(now) - 3600)
        case "nbf": c["nbf"] = .int(Int(now) + 3600)
        default: alg = "none"
        }
        let error = #expect(throws: RPCError.self) { try check(c, alg: alg) }
        #expect(error?.kind == .invalidToken)
    }

    @Test func toleratesSmallClockSkewAndAudienceArrays() throws {
        var c = claims
        c["exp"] = .int(Int(now) - 60)
        c["aud"] = ["other", "client-1"]
        c["azp"] = "client-1"
        _ = try check(c)
    }

    /// OpenID Connect Core §3.1.3.7: several audiences need azp naming this client, and an azp
    /// present must be this client.
    @Test(arguments: [(["other", "client-1"], nil), (["other", "client-1"], "other"), (["client-1"], "other")] as [([String], String?)])
    func audienceArraysNeedTheAuthorizedParty(_ audiences: [String], _ azp: String?) {
        var c = claims
        c["aud"] = .array(audiences.map(JSONValue.string))
        if let azp { c["azp"] = .string(azp) }
        let error = #expect(throws: RPCError.self) { try check(c) }
        #expect(error?.kind == .invalidToken)
    }

    /// RFC 7515 §4.1.11: a crit header names extensions the checker must understand.
    @Test func criticalHeaderExtensionsAreRejected() throws {
        let token = try Self.token(.object(claims), extraHeader: ["crit": ["exp"], "exp": 1])
        let error = #expect(throws: RPCError.self) { try IDTokenValidator.validate(token, keys: Self.jwks(Self.key, kid: "k1"), expect: expect, now: now) }
        #expect(error?.message.contains("crit") == true)
    }

    /// RFC 7515 §2: JWS segments are unpadded base64url. A segment in the other alphabet, with
    /// padding, or spelt non-canonically is not the same token.
    @Test func jwtSegmentsMustBeStrictBase64URL() throws {
        let good = try Self.token(.object(claims))
        let parts = good.split(separator: ".").map(String.init)
        let signature = parts[2]
        var variants: [String] = []
        variants.append(signature.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/"))
        variants.append(signature + "==")
        variants.append(String(signature.prefix(10)) + "=" + String(signature.dropFirst(10)))
        for variant in variants where variant != signature {
            let token = parts[0] + "." + parts[1] + "." + variant
            #expect(throws: RPCError.self, "\(variant.prefix(12))…") {
                try IDTokenValidator.validate(token, keys: Self.jwks(Self.key, kid: "k1"), expect: expect, now: now)
            }
        }
        #expect(Base64URL.decode("QQ") == [0x41])
        #expect(Base64URL.decode("QR") == nil, "non-canonical: leftover bits set")
        #expect(Base64URL.decode("QQ==") == nil)
        #expect(Base64URL.decode("a+b/") == nil)
    }

    @Test func jwksWithoutAUsableRSAKeyIsRejected() throws {
        let body = Array(#"{"keys":[{"kty":"EC","kid":"e"},{"kty":"RSA","kid":"x","n":"AQAB","e":"AQAB"}]}"#.utf8)
        // A 24-bit modulus is not a usable signing key: rejected rather than trusted.
        #expect(throws: RPCError.self) { try JWKS.parse(body) }
    }
}

@Suite struct LoopbackListenerTests {
    @Test func answersTheExpectedPathOnceThenCloses() async throws {
        let seen = Counter()
        let listener = try await LoopbackListener.start { target in
            await seen.add(target)
            return LoopbackListener.Reply(status: 200, html: "<p>ok</p>", done: true)
        }
        #expect(listener.port > 0)
        let missing = try await Self.get("http://127.0.0.1:\(listener.port)/favicon.ico")
        #expect(missing.status == 404)
        let answer = try await Self.get("http://127.0.0.1:\(listener.port)/?code=c&state=s")
        #expect(answer.status == 200)
        #expect(answer.body.contains("ok"))
        #expect(await seen.values == ["/?code=c&state=s"])
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(!listener.isOpen)
        await #expect(throws: (any Error).self) { try await Self.get("http://127.0.0.1:\(listener.port)/?code=c&state=s") }
    }

    @Test func bindsLoopbackOnly() async throws {
        let listener = try await LoopbackListener.start { _ in LoopbackListener.Reply(status: 200, html: "", done: true) }
        defer { listener.close() }
        let output = try Self.run("/bin/sh", ["-c", "ss -ltn 2>/dev/null || netstat -ltn"])
        let line = output.split(separator: "\n").first { $0.contains(":\(listener.port) ") }
        #expect(line?.contains("127.0.0.1:\(listener.port)") == true, "\(line ?? "no listening socket")")
    }

    actor Counter {
        var values: [String] = []
        func add(_ v: String) { values.append(v) }
    }

    static func get(_ url: String) async throws -> (status: Int, body: String) {
        let text = try run("/usr/bin/curl", ["-s", "-m", "20", "-w", "\n%{http_code}", url])
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let code = lines.last.flatMap({ Int($0) }), code != 0 else { throw URLError(.cannotConnectToHost) }
        return (code, lines.dropLast().joined(separator: "\n"))
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

@Suite struct QueryGraphemeRegressionTests {
    @Test func ampersandFollowedByACombiningMarkStillSeparates() {
        #expect(FormEncoding.parseQuery("a=1&\u{301}b=2") == ["a": "1", "\u{301}b": "2"])
        #expect(AuthorizationCallback.parse("/?\u{301}x=1&code=c&state=s") == .success(.code(code: "c", state: "s", extra: ["\u{301}x": "1"])))
    }
}

/// The key set fetched while the browser is out serves the check after the callback: one
/// download, shared when asked for again while it is in flight, and a new one for a key id the
/// set lacks (rotation), never the old download.
@Suite struct KeySetCacheTests {
    /// Answers the JWKS after `delayMs`, with key id `kid` (changeable), counting downloads.
    final class JWKSServer: HTTPTransport {
        let downloads = Mutex(0)
        let kid = Mutex("k1")
        let delayMs: Int
        init(delayMs: Int) { self.delayMs = delayMs }

        func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
            downloads.withLock { $0 += 1 }
            let kid = self.kid.withLock { $0 }
            try? await Task.sleep(for: .milliseconds(delayMs))
            let primitives = try! IDTokenTests.key.publicKey.getKeyPrimitives()
            let key: JSONValue = [
                "kty": "RSA", "use": "sig", "kid": .string(kid),
                "n": .string(Base64URL.encode(Array(primitives.modulus))), "e": .string(Base64URL.encode(Array(primitives.publicExponent))),
            ]
            return HTTPResponse(status: 200, headers: HTTPHeaders(), body: JSONWriter.bytes(["keys": [key]]), effectiveURL: request.url, durationMs: 0)
        }
    }

    static let url = "https://login.example.test/keys"

    @Test func aPrefetchedSetIsNotDownloadedAgain() async throws {
        let server = JWKSServer(delayMs: 0)
        let cache = KeySetCache(http: server)
        await cache.prefetch(Self.url)
        let keys = try await cache.keys(Self.url, forToken: try IDTokenTests.token(["sub": "x"], kid: "k1"))
        #expect(keys.first?.kid == "k1")
        #expect(server.downloads.withLock { $0 } == 1)
    }

    @Test func aPrefetchInFlightIsSharedWithTheCheck() async throws {
        let server = JWKSServer(delayMs: 300)
        let cache = KeySetCache(http: server)
        let prefetch = Task { await cache.prefetch(Self.url) }
        try await Task.sleep(for: .milliseconds(50)) // the download is under way
        let keys = try await cache.keys(Self.url, forToken: try IDTokenTests.token(["sub": "x"], kid: "k1"))
        await prefetch.value
        #expect(keys.first?.kid == "k1")
        #expect(server.downloads.withLock { $0 } == 1)
    }

    @Test func anUnknownKeyIDDownloadsTheSetAnew() async throws {
        let server = JWKSServer(delayMs: 0)
        let cache = KeySetCache(http: server)
        await cache.prefetch(Self.url)
        server.kid.withLock { $0 = "k2" } // the provider rotated its key
        let keys = try await cache.keys(Self.url, forToken: try IDTokenTests.token(["sub": "x"], kid: "k2"))
        #expect(keys.first?.kid == "k2")
        #expect(server.downloads.withLock { $0 } == 2)
    }
}
