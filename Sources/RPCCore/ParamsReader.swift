/// Reads named params with precise `-32602` errors (`data.field` names the offending param)
/// and rejects params the method does not know, so a typo never passes silently.
public struct ParamsReader {
    private let object: JSONObject
    private var consumed: Set<String> = []
    /// `initialize` tolerates extra fields that LSP-style clients send (capabilities, trace...).
    private let allowsUnknown: Bool

    public init(_ params: JSONValue?, allowsUnknown: Bool = false) throws(RPCError) {
        self.allowsUnknown = allowsUnknown
        switch params {
        case nil, .null?: object = JSONObject()
        case .object(let o)?: object = o
        case .array(let a)? where a.isEmpty: object = JSONObject()
        case let other?:
            throw .invalidParams(
                field: "params", "params must be an object with named members, not \(other.typeName == "array" ? "a positional array" : "a \(other.typeName)")."
            )
        }
    }

    private mutating func value(_ name: String) -> JSONValue? {
        consumed.insert(name)
        guard let value = object[name], !value.isNull else { return nil }
        return value
    }

    public mutating func optionalString(_ name: String, maxLength: Int = 4096) throws(RPCError) -> String? {
        guard let value = value(name) else { return nil }
        guard case .string(let s) = value else {
            throw .invalidParams(field: name, "'\(name)' must be a string, not a \(value.typeName).")
        }
        guard s.utf8.count <= maxLength else {
            throw .invalidParams(field: name, "'\(name)' is longer than \(maxLength) bytes.")
        }
        return s
    }

    public mutating func requiredString(_ name: String, maxLength: Int = 4096) throws(RPCError) -> String {
        guard let s = try optionalString(name, maxLength: maxLength) else {
            throw .invalidParams(field: name, "The parameter '\(name)' is required.")
        }
        return s
    }

    /// A required string that must contain something besides whitespace.
    public mutating func requiredNonEmptyString(_ name: String, maxLength: Int = 4096) throws(RPCError) -> String {
        let s = try requiredString(name, maxLength: maxLength)
        guard s.contains(where: { !$0.isWhitespace }) else {
            throw .invalidParams(field: name, "'\(name)' must not be empty.")
        }
        return s
    }

    public mutating func optionalBool(_ name: String) throws(RPCError) -> Bool? {
        guard let value = value(name) else { return nil }
        guard case .bool(let b) = value else {
            throw .invalidParams(field: name, "'\(name)' must be true or false, not a \(value.typeName).")
        }
        return b
    }

    public mutating func optionalInt(_ name: String, range: ClosedRange<Int>) throws(RPCError) -> Int? {
        guard let value = value(name) else { return nil }
        guard case .number(let text) = value, let n = Int(text) else {
            throw .invalidParams(field: name, "'\(name)' must be a whole number.")
        }
        guard range.contains(n) else {
            throw .invalidParams(field: name, "'\(name)' must be between \(range.lowerBound) and \(range.upperBound).")
        }
        return n
    }

    public mutating func optionalNumber(_ name: String, range: ClosedRange<Double>) throws(RPCError) -> Double? {
        guard let value = value(name) else { return nil }
        guard case .number(let text) = value, let n = Double(text), n.isFinite else {
            throw .invalidParams(field: name, "'\(name)' must be a number.")
        }
        guard range.contains(n) else {
            throw .invalidParams(field: name, "'\(name)' must be between \(range.lowerBound) and \(range.upperBound).")
        }
        return n
    }

    public mutating func optionalStringArray(_ name: String, maxCount: Int = 100) throws(RPCError) -> [String]? {
        guard let value = value(name) else { return nil }
        guard case .array(let items) = value, items.count <= maxCount else {
            throw .invalidParams(field: name, "'\(name)' must be an array of at most \(maxCount) strings.")
        }
        var strings: [String] = []
        for item in items {
            guard case .string(let s) = item, s.utf8.count <= 4096 else {
                throw .invalidParams(field: name, "Every element of '\(name)' must be a string.")
            }
            strings.append(s)
        }
        return strings
    }

    public mutating func optionalObject(_ name: String) throws(RPCError) -> JSONObject? {
        guard let value = value(name) else { return nil }
        guard case .object(let o) = value else {
            throw .invalidParams(field: name, "'\(name)' must be an object, not a \(value.typeName).")
        }
        return o
    }

    /// Any JSON value, unchecked (request ids in `$/cancelRequest`).
    public mutating func rawValue(_ name: String) -> JSONValue? { value(name) }

    /// One of `allowed` (every case unless given), by its raw value.
    public mutating func optionalEnum<E: RawRepresentable & CaseIterable>(_ name: String, _ type: E.Type, among allowed: [E] = Array(E.allCases))
        throws(RPCError) -> E? where E.RawValue == String, E: Equatable
    {
        guard let raw = try optionalString(name, maxLength: 64) else { return nil }
        guard let e = E(rawValue: raw), allowed.contains(e) else {
            let allowed = allowed.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            throw .invalidParams(field: name, "'\(name)' must be one of \(allowed).")
        }
        return e
    }

    public mutating func requiredEnum<E: RawRepresentable & CaseIterable>(_ name: String, _ type: E.Type, among allowed: [E] = Array(E.allCases))
        throws(RPCError) -> E where E.RawValue == String, E: Equatable
    {
        guard let e = try optionalEnum(name, type, among: allowed) else {
            let allowed = allowed.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            throw .invalidParams(field: name, "The parameter '\(name)' is required (one of \(allowed)).")
        }
        return e
    }

    public func finish() throws(RPCError) {
        guard !allowsUnknown else { return }
        for key in object.keys where !consumed.contains(key) {
            throw .invalidParams(field: key.clipped(toBytes: 4096), "Unknown parameter '\(key.clipped(toBytes: 64))'.")
        }
    }
}
