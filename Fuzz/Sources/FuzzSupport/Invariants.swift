import OAuth
import RPCCore
import WizardContract

#if canImport(Glibc)
    import Glibc
#endif

// Helpers shared by the fuzz targets. A broken invariant stops the process with fatalError, so
// libFuzzer reports it exactly like a crash (with the input saved as crash-<sha1>).

/// Stops with `message` when `condition` is false.
@inline(__always)
public func invariant(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition { violated(message(), file: file, line: line) }
}

@inline(never)
public func violated(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("invariant violated: \(message)", file: file, line: line)
}

/// Findings already reported and not fixed yet, by id (see README.md, "Known findings"). Only
/// when FUZZ_KNOWN_BUGS names an id (comma-separated, or "all") is its check skipped, so a long
/// run can look past a finding it has already made; by default every check runs.
public enum KnownBugs {
    static let tolerated: Set<String> = {
        guard let raw = getenv("FUZZ_KNOWN_BUGS") else { return [] }
        return Set(String(cString: raw).split(separator: ",").map { String($0) })
    }()

    /// True when the check for `id` should run.
    public static func check(_ id: String) -> Bool {
        !tolerated.contains(id) && !tolerated.contains("all")
    }
}

/// Bytes as a short printable string (\xNN for anything that is not printable ASCII).
public func escaped(_ bytes: some Collection<UInt8>, limit: Int = 300) -> String {
    var out = "\""
    for byte in bytes.prefix(limit) {
        switch byte {
        case 0x5C: out += "\\\\"
        case 0x22: out += "\\\""
        case 0x0A: out += "\\n"
        case 0x0D: out += "\\r"
        case 0x09: out += "\\t"
        case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = String(byte, radix: 16)
            out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    out += "\""
    if bytes.count > limit { out += "… (\(bytes.count) bytes)" }
    return out
}

public func escaped(_ string: String, limit: Int = 300) -> String { escaped(Array(string.utf8), limit: limit) }

// MARK: - JSON

public enum JSONChecks {
    /// Deeper than anything the wire parser accepts plus the response envelope around it.
    public static let reparseDepth = 1024

    /// JSONWriter output must be NDJSON-safe (no raw CR or LF), parse back to an equal value, and
    /// serialize again to the same bytes. Returns the bytes.
    @discardableResult
    public static func roundTrip(_ value: JSONValue, _ what: @autoclosure () -> String) -> [UInt8] {
        let bytes = JSONWriter.bytes(value)
        invariant(
            !bytes.contains(0x0A) && !bytes.contains(0x0D),
            "\(what()): JSONWriter output contains a raw line break (breaks NDJSON framing): \(escaped(bytes))")
        let reparsed: JSONValue
        do {
            reparsed = try JSONParser.parse(bytes, maximumDepth: reparseDepth)
        } catch {
            violated("\(what()): JSONWriter output does not parse back (\(error)): \(escaped(bytes))")
        }
        invariant(reparsed == value, "\(what()): JSONWriter output parses to a different value: \(escaped(bytes))")
        let again = JSONWriter.bytes(reparsed)
        invariant(again == bytes, "\(what()): writing the re-parsed value gives other bytes: \(escaped(bytes)) vs \(escaped(again))")
        invariant(JSONWriter.string(value) == String(decoding: bytes, as: UTF8.self), "\(what()): JSONWriter.string differs from JSONWriter.bytes")
        return bytes
    }

    /// An error as the server sends it: `{"code","message","data":{"kind",…}}`, round-tripping,
    /// with a bounded message and a kind the contract lists.
    /// `maximumMessageBytes` nil: the message may legitimately carry a peer's text (an Exchange
    /// fault string), bounded only by the response size.
    public static func checkError(_ error: RPCError, _ what: @autoclosure () -> String, maximumMessageBytes: Int? = 2048) {
        invariant(ErrorKind.all.contains(error.kind), "\(what()): error kind \(error.kind.name) is not in ErrorKind.all (the contract)")
        invariant(
            error.message.utf8.count <= maximumMessageBytes ?? .max,
            "\(what()): error message of \(error.message.utf8.count) bytes (unbounded input echoed?): \(escaped(error.message))")
        let json = error.json
        roundTrip(json, "\(what()): RPCError.json")
        invariant(json["code"] == .int(error.code), "\(what()): error.json code")
        invariant(json["message"] == .string(error.message), "\(what()): error.json message")
        invariant(json["data"]?["kind"] == .string(error.kind.name), "\(what()): error.data.kind is not \(error.kind.name): \(escaped(JSONWriter.bytes(json)))")
    }

    /// A response line from ResponseEncoder: valid JSON, `jsonrpc` 2.0, the request id echoed
    /// byte for byte, and exactly one of result/error.
    @discardableResult
    public static func checkResponse(_ bytes: [UInt8], id: JSONValue, _ what: @autoclosure () -> String) -> JSONValue {
        invariant(!bytes.contains(0x0A) && !bytes.contains(0x0D), "\(what()): response contains a raw line break: \(escaped(bytes))")
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes, maximumDepth: reparseDepth)
        } catch {
            violated("\(what()): response is not JSON (\(error)): \(escaped(bytes))")
        }
        guard case .object(let object) = value else { violated("\(what()): response is not an object: \(escaped(bytes))") }
        invariant(object["jsonrpc"] == .string("2.0"), "\(what()): response jsonrpc: \(escaped(bytes))")
        invariant(object["id"] == id, "\(what()): response id differs from the request id: \(escaped(bytes))")
        let idBytes = JSONWriter.bytes(id)
        invariant(bytes.starts(with: Array(#"{"jsonrpc":"2.0","id":"#.utf8) + idBytes), "\(what()): id not echoed byte for byte: \(escaped(bytes))")
        invariant((object["result"] != nil) != (object["error"] != nil), "\(what()): response needs exactly one of result/error: \(escaped(bytes))")
        invariant(object.count == 3, "\(what()): response has extra members: \(escaped(bytes))")
        return value
    }
}

// MARK: - OAuth callback (shared: the messages fuzzer reaches it through completeSignIn)

public enum CallbackChecks {
    /// AuthorizationCallback.parse on a target, with what its result promises.
    @discardableResult
    public static func parse(_ target: String) -> Result<AuthorizationCallback, AuthorizationCallback.ParseFailure> {
        let result = AuthorizationCallback.parse(target)
        invariant(AuthorizationCallback.parse(target) == result, "AuthorizationCallback.parse is not deterministic for \(escaped(target))")
        switch result {
        case .success(.code(let code, let state, let extra)):
            invariant(extra["code"] == nil && extra["state"] == nil, "extra repeats code/state for \(escaped(target))")
            if code.isEmpty {
                invariant(extra["admin_consent"] != nil, "an empty code without admin_consent for \(escaped(target))")
            }
            _ = state
        case .success(.error(let error, _, _)):
            invariant(!error.isEmpty, "an empty error accepted for \(escaped(target))")
        case .failure(.notARedirect(let why)):
            invariant(!why.isEmpty, "an empty failure reason")
        }
        if case .success = result {
            invariant(target.utf8.count <= 16384, "a target over 16384 bytes accepted")
        }
        return result
    }
}
