/// A parsed XML element: just what SOAP and Autodiscover answers need.
public struct XMLElement: Sendable, Equatable {
    /// Local name without prefix.
    public var name: String
    /// Namespace URI the prefix (or default namespace) resolved to; "" for none.
    public var namespace: String
    /// Attributes by local name (namespaced attributes keep only their local name).
    public var attributes: [String: String]
    public var children: [XMLElement]
    /// The element's own text (character data and CDATA, entities decoded), trimmed.
    public var text: String

    public init(name: String, namespace: String = "", attributes: [String: String] = [:], children: [XMLElement] = [], text: String = "") {
        self.name = name
        self.namespace = namespace
        self.attributes = attributes
        self.children = children
        self.text = text
    }

    /// The first child with this local name (any namespace).
    public func child(_ name: String) -> XMLElement? {
        children.first { $0.name == name }
    }

    public func children(_ name: String) -> [XMLElement] {
        children.filter { $0.name == name }
    }

    /// Follows a path of local names: `envelope.path("Body", "GetFolderResponse")`.
    public func path(_ names: String...) -> XMLElement? {
        var current: XMLElement? = self
        for name in names { current = current?.child(name) }
        return current
    }

    /// Depth-first search for the first element with this local name (self included).
    public func first(_ name: String) -> XMLElement? {
        if self.name == name { return self }
        for child in children {
            if let found = child.first(name) { return found }
        }
        return nil
    }
}

public struct XMLParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var offset: Int
    public var description: String { "\(reason) at byte \(offset)" }
}

/// A small, strict, non-validating XML parser for answers from servers we do not trust:
/// no DTDs (so no entity expansion or external entities), bounded depth, UTF-8 only,
/// the five predefined entities and character references.
public struct XMLTreeParser {
    public static let maximumDepth = 64

    public static func parse(_ bytes: [UInt8]) throws(XMLParseError) -> XMLElement {
        var parser = XMLTreeParser(bytes: bytes)
        return try parser.document()
    }

    public static func parse(_ text: String) throws(XMLParseError) -> XMLElement {
        try parse(Array(text.utf8))
    }

    private let bytes: [UInt8]
    private var index = 0

    private init(bytes: [UInt8]) {
        self.bytes = bytes
        // A UTF-8 byte order mark is allowed before the prolog.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    }

    private func fail(_ reason: String) -> XMLParseError { XMLParseError(reason: reason, offset: index) }

    private mutating func document() throws(XMLParseError) -> XMLElement {
        try skipMisc()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "<") else { throw fail("no root element") }
        let root = try element(depth: 0, scopes: [["xml": "http://www.w3.org/XML/1998/namespace"]])
        try skipMisc()
        guard index == bytes.count else { throw fail("content after the root element") }
        return root
    }

    /// Whitespace, comments, processing instructions (the XML declaration among them).
    private mutating func skipMisc() throws(XMLParseError) {
        while true {
            skipWhitespace()
            if hasPrefix("<?") {
                try skip(past: "?>")
            } else if hasPrefix("<!--") {
                try skip(past: "-->")
            } else if hasPrefix("<!") {
                throw fail("DOCTYPE and other declarations are not accepted")
            } else {
                return
            }
        }
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    private func hasPrefix(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard index + u.count <= bytes.count else { return false }
        return Array(bytes[index..<index + u.count]) == u
    }

    private mutating func skip(past terminator: String) throws(XMLParseError) {
        let t = Array(terminator.utf8)
        while index + t.count <= bytes.count {
            if bytes[index] == t[0], Array(bytes[index..<index + t.count]) == t {
                index += t.count
                return
            }
            index += 1
        }
        throw fail("unterminated construct, expected '\(terminator)'")
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39)
            || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: ":") || b >= 0x80
    }

    private mutating func name() throws(XMLParseError) -> String {
        let start = index
        while index < bytes.count, Self.isNameByte(bytes[index]) { index += 1 }
        guard index > start, let s = String(validating: bytes[start..<index], as: UTF8.self) else { throw fail("expected a name") }
        return s
    }

    private static func split(_ qualified: String) -> (prefix: String, local: String) {
        guard let colon = qualified.firstIndex(of: ":") else { return ("", qualified) }
        return (String(qualified[..<colon]), String(qualified[qualified.index(after: colon)...]))
    }

    private mutating func element(depth: Int, scopes: [[String: String]]) throws(XMLParseError) -> XMLElement {
        guard depth < Self.maximumDepth else { throw fail("elements nested deeper than \(Self.maximumDepth) levels") }
        index += 1 // '<'
        let qualified = try name()
        var rawAttributes: [(String, String)] = []
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw fail("unterminated start tag") }
            if bytes[index] == UInt8(ascii: "/") || bytes[index] == UInt8(ascii: ">") { break }
            let attributeName = try name()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else { throw fail("expected '=' after an attribute name") }
            index += 1
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") else {
                throw fail("attribute values must be quoted")
            }
            let quote = bytes[index]
            index += 1
            let start = index
            while index < bytes.count, bytes[index] != quote {
                if bytes[index] == UInt8(ascii: "<") { throw fail("'<' in an attribute value") }
                index += 1
            }
            guard index < bytes.count else { throw fail("unterminated attribute value") }
            let value = try decodeEntities(start, index)
            index += 1
            rawAttributes.append((attributeName, value))
        }
        // Namespace declarations of this element apply to it and its attributes.
        var scope: [String: String] = [:]
        for (attributeName, value) in rawAttributes {
            if attributeName == "xmlns" { scope[""] = value } else if attributeName.hasPrefix("xmlns:") { scope[String(attributeName.dropFirst(6))] = value }
        }
        let scopes = scope.isEmpty ? scopes : scopes + [scope]
        func resolve(_ prefix: String) -> String? {
            for s in scopes.reversed() { if let uri = s[prefix] { return uri } }
            return prefix.isEmpty ? "" : nil
        }
        let (prefix, local) = Self.split(qualified)
        guard let namespace = resolve(prefix) else { throw fail("undeclared namespace prefix '\(prefix)'") }
        var attributes: [String: String] = [:]
        for (attributeName, value) in rawAttributes where attributeName != "xmlns" && !attributeName.hasPrefix("xmlns:") {
            attributes[Self.split(attributeName).local] = value
        }
        var result = XMLElement(name: local, namespace: namespace, attributes: attributes)

        if bytes[index] == UInt8(ascii: "/") {
            index += 1
            guard index < bytes.count, bytes[index] == UInt8(ascii: ">") else { throw fail("expected '>' after '/'") }
            index += 1
            return result
        }
        index += 1 // '>'
        var text = ""
        while true {
            guard index < bytes.count else { throw fail("unterminated element <\(qualified)>") }
            if bytes[index] != UInt8(ascii: "<") {
                let start = index
                while index < bytes.count, bytes[index] != UInt8(ascii: "<") { index += 1 }
                text += try decodeEntities(start, index)
            } else if hasPrefix("</") {
                index += 2
                let closing = try name()
                guard closing == qualified else { throw fail("</\(closing)> does not close <\(qualified)>") }
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ">") else { throw fail("expected '>' in an end tag") }
                index += 1
                result.text = text.trimmingXMLWhitespace()
                return result
            } else if hasPrefix("<!--") {
                try skip(past: "-->")
            } else if hasPrefix("<![CDATA[") {
                index += 9
                let start = index
                try skip(past: "]]>")
                guard let s = String(validating: bytes[start..<index - 3], as: UTF8.self) else { throw fail("invalid UTF-8") }
                text += s
            } else if hasPrefix("<?") {
                try skip(past: "?>")
            } else if hasPrefix("<!") {
                throw fail("declarations are not accepted inside elements")
            } else {
                result.children.append(try element(depth: depth + 1, scopes: scopes))
            }
        }
    }

    private func decodeEntities(_ start: Int, _ end: Int) throws(XMLParseError) -> String {
        guard let raw = String(validating: bytes[start..<end], as: UTF8.self) else {
            throw XMLParseError(reason: "invalid UTF-8", offset: start)
        }
        guard raw.unicodeScalars.contains("&") else { return raw }
        // By Unicode scalar: ";" followed by a combining mark is one Character.
        var out = String.UnicodeScalarView()
        let scalars = Array(raw.unicodeScalars)
        var i = 0
        while i < scalars.count {
            guard scalars[i] == "&" else {
                out.append(scalars[i])
                i += 1
                continue
            }
            guard let semi = scalars[i...].prefix(12).firstIndex(of: ";") else {
                throw XMLParseError(reason: "unterminated entity reference", offset: start)
            }
            var entity = String.UnicodeScalarView()
            entity.append(contentsOf: scalars[(i + 1)..<semi])
            switch String(entity) {
            case "lt": out.append("<")
            case "gt": out.append(">")
            case "amp": out.append("&")
            case "quot": out.append("\"")
            case "apos": out.append("'")
            case let name:
                var value: UInt32?
                // Digits only: UInt32(_:radix:) would also take a sign ("&#+65;").
                func digits(_ text: Substring, hex: Bool) -> Bool {
                    !text.isEmpty && text.utf8.count <= 8 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (hex && (0x41...0x46).contains($0 & 0xDF)) }
                }
                if name.hasPrefix("#x"), digits(name.dropFirst(2), hex: true) {
                    value = UInt32(name.dropFirst(2), radix: 16)
                } else if name.hasPrefix("#"), digits(name.dropFirst(1), hex: false) {
                    value = UInt32(name.dropFirst(1))
                }
                guard let value, value != 0, let unicode = Unicode.Scalar(value) else {
                    throw XMLParseError(reason: "unknown entity '&\(name);'", offset: start)
                }
                out.append(unicode)
            }
            i = semi + 1
        }
        return String(out)
    }
}

extension String {
    func trimmingXMLWhitespace() -> String {
        var s = self[...]
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

/// Escapes text for element content and attribute values we build (requests we send).
public func xmlEscaped(_ text: String) -> String {
    // By Unicode scalar, not Character: "<" followed by a combining mark is one Character and
    // would otherwise slip through unescaped.
    var out = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
        switch scalar {
        case "<": out.append(contentsOf: "&lt;".unicodeScalars)
        case ">": out.append(contentsOf: "&gt;".unicodeScalars)
        case "&": out.append(contentsOf: "&amp;".unicodeScalars)
        case "\"": out.append(contentsOf: "&quot;".unicodeScalars)
        case "'": out.append(contentsOf: "&apos;".unicodeScalars)
        default: out.append(scalar)
        }
    }
    return String(out)
}
