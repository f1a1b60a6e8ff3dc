// Fuzz target (d): the JSON bodies identity providers send back from their token and device
// authorization endpoints: token answers (Microsoft, Google, SuperOffice), device code answers
// (RFC 8628 §3.2), and errors (RFC 6749 §5.2, with Microsoft's AADSTS numbers).
//
// The input is the HTTP body. It goes through JSONParser.parse and then, whatever it is, through
// TokenResponse(json:), DeviceAuthorization(json:) and OAuthErrorResponse(json:) (and .aadsts,
// and Microsoft365.error, which maps it to the contract's kinds). Every number a server sends
// must come out finite and inside the published range, and must convert to a sleep without a
// trap (issue 11.5: `expires_in: 1e19` used to end the process). Any broken invariant is a
// fatalError, which libFuzzer reports as a crash.

import FuzzSupport
import Microsoft365Connector
import OAuth
import RPCCore
import Threading
import WizardContract

// MARK: - Numbers

/// What ServerNumber.seconds must give: a JSON number or a numeric string (ASCII whitespace
/// around it allowed) read as a Double; anything else, NaN or an infinity is the fallback;
/// the rest is clamped.
func referenceSeconds(_ value: JSONValue?, default fallback: Double, range: ClosedRange<Double>) -> Double {
    let parsed: Double?
    switch value {
    case .number(let text)?: parsed = Double(text)
    case .string(let text)?:
        let bytes = Array(text.utf8)
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        if let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) {
            parsed = Double(String(decoding: bytes[first...last], as: UTF8.self))
        } else {
            parsed = Double("")
        }
    default: parsed = nil
    }
    guard let parsed, parsed.isFinite else { return fallback }
    return min(max(parsed, range.lowerBound), range.upperBound)
}

/// trim-crlf (found by this target, fixed): ServerNumber trimmed by Character, and "\r\n" is one
/// grapheme. Every value is comparable with the reference now.
func comparable(_ value: JSONValue?) -> Bool { true }

/// A bounded number of seconds: finite, in range, and a sleep that cannot trap and is what it says.
func checkBounded(_ seconds: Double, _ range: ClosedRange<Double>, _ what: String, _ input: [UInt8]) {
    invariant(seconds.isFinite, "\(what) is not finite (\(seconds)) for \(escaped(input))")
    invariant(range.contains(seconds), "\(what) \(seconds) outside \(range) for \(escaped(input))")
    let ns = nanoseconds(seconds)
    invariant(Double(ns) <= range.upperBound * 1e9 + 1e6, "nanoseconds(\(seconds)) = \(ns), more than \(what)'s upper bound")
    if seconds >= 1 {
        // Within a part in 10^12 of the exact value.
        invariant(abs(Double(ns) - seconds * 1e9) <= seconds * 1e-3 + 1, "nanoseconds(\(seconds)) = \(ns)")
    }
}

/// nanoseconds(_:) of anything at all never traps, and saturates sanely.
func checkNanoseconds(_ seconds: Double) {
    let ns = nanoseconds(seconds)
    if !(seconds > 0) { invariant(ns == 0, "nanoseconds(\(seconds)) = \(ns), not 0") }
    if seconds.isInfinite && seconds > 0 { invariant(ns == 18_000_000_000_000_000_000, "nanoseconds(+inf) = \(ns)") }
}

/// Every number and string anywhere in the value, as the Double a careless caller would make of it.
func everyNumber(in value: JSONValue, into out: inout [Double], budget: inout Int) {
    guard budget > 0 else { return }
    budget -= 1
    switch value {
    case .number(let text): if let d = Double(text) { out.append(d) }
    case .string(let text): if text.utf8.count <= 64, let d = Double(text) { out.append(d) }
    case .array(let items): for item in items { everyNumber(in: item, into: &out, budget: &budget) }
    case .object(let object): for member in object.members { everyNumber(in: member.value, into: &out, budget: &budget) }
    default: break
    }
}

// MARK: - Bodies

func checkToken(_ json: JSONValue, _ input: [UInt8]) {
    let token = TokenResponse(json: json)
    let accessToken = json.objectValue?["access_token"]?.stringValue
    let expected = accessToken.map { !$0.isEmpty } ?? false
    invariant(
        (token != nil) == expected,
        "TokenResponse exists: \(token != nil), access_token is a non-empty string: \(expected), for \(escaped(input))")
    guard let token else { return }
    invariant(token.accessToken == accessToken, "TokenResponse.accessToken differs from access_token")
    invariant(token.raw == json.objectValue, "TokenResponse.raw is not the body")
    invariant(token.refreshToken == json["refresh_token"]?.stringValue, "TokenResponse.refreshToken")
    invariant(token.idToken == json["id_token"]?.stringValue, "TokenResponse.idToken")
    invariant(token.scope == json["scope"]?.stringValue, "TokenResponse.scope")
    let member = json["expires_in"]
    if member == nil || member == .null {
        invariant(token.expiresIn == nil, "TokenResponse.expiresIn \(String(describing: token.expiresIn)) without an expires_in")
    } else {
        guard let expiresIn = token.expiresIn else { violated("TokenResponse.expiresIn is nil although expires_in is \(escaped(JSONWriter.bytes(member!)))") }
        checkBounded(expiresIn, TokenResponse.expiresInRange, "TokenResponse.expiresIn", input)
        let reference = referenceSeconds(member, default: 3600, range: TokenResponse.expiresInRange)
        invariant(!comparable(member) || expiresIn == reference, "TokenResponse.expiresIn \(expiresIn), expected \(reference) for \(escaped(input))")
    }
}

func checkDevice(_ json: JSONValue, _ input: [UInt8]) {
    let device = DeviceAuthorization(json: json)
    func nonEmpty(_ key: String) -> String? { json[key]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } }
    let uri = json["verification_uri"]?.stringValue ?? json["verification_url"]?.stringValue
    let complete = nonEmpty("device_code") != nil && nonEmpty("user_code") != nil && uri.map { !$0.isEmpty } == true
    invariant((device != nil) == complete, "DeviceAuthorization exists: \(device != nil), complete: \(complete), for \(escaped(input))")
    guard let device else { return }
    invariant(
        device.deviceCode == nonEmpty("device_code") && device.userCode == nonEmpty("user_code") && device.verificationUri == uri,
        "DeviceAuthorization codes differ from the body")
    invariant(device.message == json["message"]?.stringValue, "DeviceAuthorization.message")
    checkBounded(device.expiresIn, DeviceAuthorization.expiresInRange, "DeviceAuthorization.expiresIn", input)
    checkBounded(device.interval, DeviceAuthorization.intervalRange, "DeviceAuthorization.interval", input)
    invariant(
        !comparable(json["expires_in"]) || device.expiresIn == referenceSeconds(json["expires_in"], default: 900, range: DeviceAuthorization.expiresInRange),
        "DeviceAuthorization.expiresIn \(device.expiresIn) for \(escaped(input))")
    invariant(
        !comparable(json["interval"]) || device.interval == referenceSeconds(json["interval"], default: 5, range: DeviceAuthorization.intervalRange),
        "DeviceAuthorization.interval \(device.interval) for \(escaped(input))")
    // The polling loop: slow_down adds 5 s (RFC 8628 §3.5), capped at the range's top.
    var wait = device.interval
    for _ in 0..<64 {
        wait = min(wait + 5, DeviceAuthorization.intervalRange.upperBound)
        checkBounded(wait, DeviceAuthorization.intervalRange, "device code poll interval after slow_down", input)
    }
}

func checkError(_ json: JSONValue, _ input: [UInt8]) {
    let response = OAuthErrorResponse(json: json)
    let error = json.objectValue?["error"]?.stringValue
    invariant((response != nil) == (error != nil), "OAuthErrorResponse exists: \(response != nil), error is a string: \(error != nil), for \(escaped(input))")
    guard let response else { return }
    invariant(response.error == error, "OAuthErrorResponse.error")
    invariant(response.description == json["error_description"]?.stringValue, "OAuthErrorResponse.description")
    invariant(response.codes.allSatisfy { (1...9_999_999).contains($0) }, "OAuthErrorResponse.codes \(response.codes) outside 1...9999999")
    let aadsts = response.aadsts
    // aadsts-zero (found by this target, fixed).
    invariant(
        aadsts.map { (1...9_999_999).contains($0) } ?? true,
        "aadsts \(String(describing: aadsts)) is not nil or within 1...9999999 for \(escaped(input))")
    if let first = response.codes.first { invariant(aadsts == first, "aadsts \(String(describing: aadsts)) is not error_codes' first \(first)") }
    invariant(response.aadsts == aadsts, "aadsts is not deterministic")

    // Microsoft's mapping: a kind of the contract, the number in data.aadsts, the description's
    // first line at most (a peer's text, so no fixed size bound).
    let rpc = Microsoft365.error(response)
    JSONChecks.checkError(rpc, "Microsoft365.error", maximumMessageBytes: nil)
    invariant(
        rpc.details["aadsts"] == aadsts.map { .int($0) },
        "Microsoft365.error data.aadsts \(String(describing: rpc.details["aadsts"])), aadsts \(String(describing: aadsts))")
    invariant(rpc.details["error"] == .string(response.error), "Microsoft365.error data.error")
    // said-first-line (found by this target, fixed).
    let description = response.description ?? ""
    let hasBreak = { (s: String) in s.unicodeScalars.contains { $0 == "\r" || $0 == "\n" } }
    invariant(
        hasBreak(response.error) || !hasBreak(rpc.message),
        "Microsoft365.error message has more than the description's first line: \(escaped(rpc.message)) (description \(escaped(description)))")
    _ = Microsoft365.error(OAuthErrorResponse(error: response.error, description: response.description))
}

// MARK: - Entry point

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenResponses(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let json: JSONValue
    do {
        json = try JSONParser.parse(input)
    } catch {
        // Not JSON (an HTML error page, a truncated body): what TokenClient does with it.
        return 0
    }
    checkToken(json, input)
    checkDevice(json, input)
    checkError(json, input)
    // The same members one level down (a body wrapped in an array or object is not an answer).
    if case .array(let items) = json {
        for item in items.prefix(4) {
            invariant(TokenResponse(json: .array([item])) == nil, "TokenResponse of an array")
            invariant(DeviceAuthorization(json: .array([item])) == nil, "DeviceAuthorization of an array")
            invariant(OAuthErrorResponse(json: .array([item])) == nil, "OAuthErrorResponse of an array")
        }
    }
    // Any number of the body, as a sleep or through ServerNumber with each published range.
    var numbers: [Double] = []
    var budget = 256
    everyNumber(in: json, into: &numbers, budget: &budget)
    for number in numbers.prefix(32) {
        checkNanoseconds(number)
        checkNanoseconds(-number)
        checkNanoseconds(number * 1e9)
        for range in [TokenResponse.expiresInRange, DeviceAuthorization.expiresInRange, DeviceAuthorization.intervalRange] {
            let bounded = ServerNumber.seconds(.number(String(number)), default: range.lowerBound, range: range)
            checkBounded(bounded, range, "ServerNumber.seconds(\(number))", input)
        }
    }
    return 0
}
