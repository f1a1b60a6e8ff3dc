import ConnectorCore
import HTTP
import RPCCore
import WizardContract

/// A token endpoint's answer.
public struct TokenResponse: Sendable {
    public var accessToken: String
    public var refreshToken: String?
    public var idToken: String?
    public var expiresIn: Double?
    /// Space-separated scopes actually granted (Google and Microsoft send it).
    public var scope: String?
    public var raw: JSONObject

    public static let expiresInRange: ClosedRange<Double> = 0...31_536_000

    public init?(json: JSONValue) {
        guard let accessToken = json["access_token"]?.stringValue, !accessToken.isEmpty, let raw = json.objectValue else { return nil }
        self.accessToken = accessToken
        refreshToken = json["refresh_token"]?.stringValue
        idToken = json["id_token"]?.stringValue
        // 0 s to 1 year; absent stays nil (the caller assumes an hour).
        if let value = json["expires_in"], !value.isNull {
            expiresIn = ServerNumber.seconds(value, default: 3600, range: Self.expiresInRange)
        }
        scope = json["scope"]?.stringValue
        self.raw = raw
    }
}

/// An OAuth error from a token or authorization endpoint (RFC 6749 §5.2), before a provider
/// gives it a meaning.
public struct OAuthErrorResponse: Sendable, Equatable {
    public var error: String
    public var description: String?
    /// Microsoft's numeric AADSTS codes (error_codes), if any.
    public var codes: [Int]

    public init(error: String, description: String?, codes: [Int] = []) {
        self.error = error
        self.description = description
        self.codes = codes
    }

    /// An RFC 6749 §5.2 error body; nil when `error` is not a string. Only error_codes that fit
    /// an AADSTS number (1 to 9,999,999) are kept.
    public init?(json: JSONValue) {
        guard let error = json["error"]?.stringValue else { return nil }
        let codes = json["error_codes"]?.arrayValue?.compactMap(\.intValue).filter { (1...9_999_999).contains($0) } ?? []
        self.init(error: error, description: json["error_description"]?.stringValue, codes: codes)
    }

    /// The AADSTS number in the description ("AADSTS65001: ...") or error_codes.
    public var aadsts: Int? {
        if let first = codes.first { return first }
        // The standard library's firstRange(of:), not Foundation's range(of:), which would load Foundation.
        guard let utf8 = description?.utf8, let marker = utf8.firstRange(of: "AADSTS".utf8) else { return nil }
        // AADSTS numbers have 1 to 7 digits; a longer run or 0 is not one (and cannot overflow Int).
        let digits = utf8[marker.upperBound...].prefix { (0x30...0x39).contains($0) }
        guard (1...7).contains(digits.count), let number = Int(String(decoding: digits, as: UTF8.self)), number > 0 else { return nil }
        return number
    }
}

public enum TokenEndpointFailure: Error, Sendable {
    case oauth(OAuthErrorResponse, status: Int)
    case transport(RPCError)
}

/// POSTs form-encoded grants to a token endpoint over libcurl, with TLS verified.
public struct TokenClient: Sendable {
    let http: any HTTPTransport
    let timeoutSeconds: Double

    public init(http: any HTTPTransport, timeoutSeconds: Double = 30) {
        self.http = http
        self.timeoutSeconds = timeoutSeconds
    }

    public func request(_ url: String, form: [(String, String)], pins: [String] = []) async throws(TokenEndpointFailure) -> TokenResponse {
        let json = try await post(url, form: form, pins: pins)
        guard let token = TokenResponse(json: json) else {
            throw .transport(RPCError(.serverError, "The token endpoint answered without an access token.", details: ["status": 200]))
        }
        return token
    }

    /// The raw JSON answer of a form POST (device code endpoints answer other shapes).
    public func post(_ url: String, form: [(String, String)], pins: [String] = []) async throws(TokenEndpointFailure) -> JSONValue {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/x-www-form-urlencoded")
        headers.add("Accept", "application/json")
        let request = HTTPRequest(
            method: "POST", url: url, headers: headers, body: Array(FormEncoding.encode(form).utf8),
            timeoutSeconds: timeoutSeconds, maxResponseBytes: 1 << 20, pinnedCertificateSHA256: pins)
        let response: HTTPResponse
        do {
            response = try await http.send(request)
        } catch {
            throw .transport(error.rpcError)
        }
        let json = try? JSONParser.parse(response.body)
        if let json, let error = OAuthErrorResponse(json: json) {
            throw .oauth(error, status: response.status)
        }
        guard (200..<300).contains(response.status), let json else {
            throw .transport(
                RPCError(
                    .serverError, "The token endpoint answered with HTTP \(response.status).",
                    details: ["status": .int(response.status), "responseCode": .null]))
        }
        return json
    }
}
