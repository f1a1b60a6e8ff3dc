import Cryptography
import RPCCore
import WizardContract

/// One key from a JWKS document.
public struct JSONWebKey: Sendable {
    public var kid: String?
    public var key: RSAPublicKey

    public init(kid: String?, key: RSAPublicKey) {
        self.kid = kid
        self.key = key
    }
}

public enum JWKS {
    /// The RSA signing keys of a JWKS document (other key types are skipped).
    public static func parse(_ body: [UInt8]) throws(RPCError) -> [JSONWebKey] {
        guard let json = try? JSONParser.parse(body), let keys = json["keys"]?.arrayValue else {
            throw RPCError(.invalidToken, "The identity provider's key set (JWKS) is not valid JSON.")
        }
        var result: [JSONWebKey] = []
        for key in keys where key["kty"]?.stringValue == "RSA" && (key["use"]?.stringValue ?? "sig") == "sig" {
            guard let n = key["n"]?.stringValue.flatMap(Base64URL.decode), let e = key["e"]?.stringValue.flatMap(Base64URL.decode),
                let publicKey = try? RSAPublicKey(modulus: n, exponent: e)
            else { continue }
            result.append(JSONWebKey(kid: key["kid"]?.stringValue, key: publicKey))
        }
        guard !result.isEmpty else {
            throw RPCError(.invalidToken, "The identity provider's key set (JWKS) has no usable RSA key.")
        }
        return result
    }
}

/// What an id_token must say to be accepted.
public struct IDTokenExpectations: Sendable {
    /// nil: any issuer passing `issuerCheck` (Microsoft's multi-tenant issuers carry the tenant id).
    public var issuer: String?
    public var issuerCheck: (@Sendable (String, JSONObject) -> Bool)?
    public var audience: String
    public var nonce: String?
    /// Clock skew tolerated on exp, nbf and iat.
    public var leewaySeconds: Double = 120

    public init(issuer: String?, issuerCheck: (@Sendable (String, JSONObject) -> Bool)? = nil, audience: String, nonce: String?) {
        self.issuer = issuer
        self.issuerCheck = issuerCheck
        self.audience = audience
        self.nonce = nonce
    }
}

/// Checks an id_token: RS256 signature against the provider's keys (OpenSSL), then iss,
/// aud, exp/nbf with a small leeway, and the nonce sent in the authorization request.
public enum IDTokenValidator {
    public static func validate(
        _ token: String, keys: [JSONWebKey], expect: IDTokenExpectations,
        now: Double
    ) throws(RPCError) -> JSONObject {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(parts[0]), let payloadBytes = Base64URL.decode(parts[1]),
            let signature = Base64URL.decode(parts[2]),
            let header = try? JSONParser.parse(headerBytes), let payload = (try? JSONParser.parse(payloadBytes))?.objectValue
        else {
            throw invalid("The id_token is not a well-formed JWT.")
        }
        guard header["alg"]?.stringValue == "RS256" else {
            throw invalid("The id_token is signed with \(header["alg"]?.stringValue ?? "no algorithm"), not RS256.")
        }
        // RFC 7515 §4.1.11: extensions named in crit must be understood; this checker knows none.
        guard header["crit"] == nil else {
            throw invalid("The id_token's header names critical extensions (crit) this sign-in does not understand.")
        }
        let kid = header["kid"]?.stringValue
        let candidates = keys.filter { kid == nil || $0.kid == nil || $0.kid == kid }
        let signedPart = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard candidates.contains(where: { $0.key.isValidSHA256Signature(signature, for: signedPart) }) else {
            if let reason = RSAPublicKey.unavailableReason {
                throw RPCError(.internalError, "The id_token's signature cannot be checked: \(reason)")
            }
            throw invalid("The id_token's signature does not verify against the identity provider's keys.")
        }
        let payloadValue = JSONValue.object(payload)
        guard let iss = payloadValue["iss"]?.stringValue else { throw invalid("The id_token has no issuer.") }
        if let issuer = expect.issuer, iss != issuer {
            throw invalid("The id_token was issued by \(iss), not \(issuer).")
        }
        if let check = expect.issuerCheck, !check(iss, payload) {
            throw invalid("The id_token's issuer \(iss) does not match its tenant.")
        }
        let audiences: [String]
        switch payloadValue["aud"] {
        case .string(let a)?: audiences = [a]
        case .array(let list)?: audiences = list.compactMap(\.stringValue)
        default: audiences = []
        }
        guard audiences.contains(expect.audience) else {
            throw invalid("The id_token is meant for another application (aud), not this client id.")
        }
        // OpenID Connect Core §3.1.3.7: with several audiences, azp must name this client.
        if audiences.count > 1 || payloadValue["azp"] != nil, payloadValue["azp"]?.stringValue != expect.audience {
            throw invalid("The id_token was issued to another party (azp), not this client id.")
        }
        guard let exp = payloadValue["exp"].flatMap(number) else { throw invalid("The id_token has no expiry.") }
        guard now <= exp + expect.leewaySeconds else { throw invalid("The id_token has expired.") }
        if let nbf = payloadValue["nbf"].flatMap(number), now + expect.leewaySeconds < nbf {
            throw invalid("The id_token is not valid yet (nbf); check this computer's clock.")
        }
        if let nonce = expect.nonce, payloadValue["nonce"]?.stringValue != nonce {
            throw invalid("The id_token's nonce does not match this sign-in.")
        }
        return payload
    }

    static func number(_ value: JSONValue) -> Double? {
        if case .number(let text) = value { return Double(text) }
        return nil
    }

    static func invalid(_ message: String) -> RPCError {
        RPCError(.invalidToken, message, hint: "Sign in again; if it keeps failing, check the provider settings (client id, environment or tenant).")
    }
}
