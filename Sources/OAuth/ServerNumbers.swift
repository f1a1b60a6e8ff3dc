import RPCCore
import WizardContract

/// Numbers that come from a server (expires_in, interval, counts) are bounded here before any
/// conversion: a JSON number or a numeric string is read as a Double, NaN, infinities and
/// unreadable text fall back to the default, and the result is clamped into the range the
/// caller can live with. `Int(1e19)` traps; this never does.
public enum ServerNumber {
    public static func seconds(_ value: JSONValue?, default fallback: Double, range: ClosedRange<Double>) -> Double {
        let parsed: Double?
        switch value {
        case .number(let text)?: parsed = Double(text)
        case .string(let text)?: parsed = Double(text.trimmingASCIIWhitespace)
        default: parsed = nil
        }
        guard let parsed, parsed.isFinite else { return fallback }
        return min(max(parsed, range.lowerBound), range.upperBound)
    }
}

extension String {
    /// By byte, not Character: "\r\n" is one Character that equals neither "\r" nor "\n".
    var trimmingASCIIWhitespace: Substring {
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        let bytes = utf8
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) else { return "" }
        return self[first...last]
    }
}

/// A device authorization answer (RFC 8628 §3.2), with its numbers bounded.
public struct DeviceAuthorization: Sendable, Equatable {
    public var deviceCode: String
    public var userCode: String
    public var verificationUri: String
    public var message: String?
    /// Seconds the codes stay valid, 10 s to 1 day (Microsoft sends 900).
    public var expiresIn: Double
    /// Seconds between polls, 1 s to 5 minutes (RFC 8628 default 5).
    public var interval: Double

    public static let expiresInRange: ClosedRange<Double> = 10...86_400
    public static let intervalRange: ClosedRange<Double> = 1...300

    public init(deviceCode: String, userCode: String, verificationUri: String, message: String?, expiresIn: Double, interval: Double) {
        self.deviceCode = deviceCode
        self.userCode = userCode
        self.verificationUri = verificationUri
        self.message = message
        self.expiresIn = expiresIn
        self.interval = interval
    }

    /// nil when a required member is missing or not a non-empty string.
    public init?(json: JSONValue) {
        guard let deviceCode = json["device_code"]?.stringValue, !deviceCode.isEmpty,
            let userCode = json["user_code"]?.stringValue, !userCode.isEmpty,
            let verificationUri = json["verification_uri"]?.stringValue ?? json["verification_url"]?.stringValue,
            !verificationUri.isEmpty
        else { return nil }
        self.init(
            deviceCode: deviceCode, userCode: userCode, verificationUri: verificationUri,
            message: json["message"]?.stringValue,
            expiresIn: ServerNumber.seconds(json["expires_in"], default: 900, range: Self.expiresInRange),
            interval: ServerNumber.seconds(json["interval"], default: 5, range: Self.intervalRange))
    }
}
