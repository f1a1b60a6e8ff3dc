/// How a message was framed; each reply goes out the way its request came in.
public enum Framing: Sendable, Equatable {
    /// One JSON value per line (what shell scripts and jq produce).
    case ndjson
    /// LSP base protocol: `Content-Length: N` headers, a blank line, N bytes.
    case contentLength
}

/// What the parser found in the byte stream.
public enum FrameEvent: Equatable, Sendable {
    case message([UInt8], Framing)
    /// The message exceeded the size limit; its bytes are being skipped.
    case tooLarge(Framing, declaredLength: Int?)
    /// A header block that cannot be used (no or bad Content-Length).
    case badHeader(String)
    /// Input ended in the middle of a Content-Length message.
    case truncated(Framing)
}

/// Splits a byte stream into messages, detecting the framing of each message from its first
/// bytes: `Content-…` starts a header block, anything else is a line. A small state machine
/// that can be fed any split of the input (one byte at a time, or many messages at once).
public struct FrameParser {
    public let maximumMessageBytes: Int
    static let maximumHeaderBytes = 8192

    private enum State: Equatable {
        case start
        case line(scannedTo: Int)
        case skippingLine
        case headers(scannedTo: Int)
        case body(length: Int)
        case skippingBody(remaining: Int)
    }

    private var buffer: [UInt8] = []
    private var head = 0
    private var state = State.start

    public init(maximumMessageBytes: Int) {
        self.maximumMessageBytes = maximumMessageBytes
    }

    /// Bytes held for an incomplete message (bounded by the message limit).
    public var bufferedByteCount: Int { buffer.count - head }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer, into events: inout [FrameEvent]) {
        buffer.append(contentsOf: bytes)
        drain(into: &events)
    }

    public mutating func feed(_ bytes: [UInt8]) -> [FrameEvent] {
        var events: [FrameEvent] = []
        bytes.withUnsafeBytes { feed($0, into: &events) }
        return events
    }

    /// End of input: a final line without a newline still counts as a message.
    public mutating func finish() -> [FrameEvent] {
        var events: [FrameEvent] = []
        switch state {
        case .line:
            let line = trimmedLine(head, buffer.count)
            if !line.isEmpty { events.append(.message(line, .ndjson)) }
        case .headers:
            if bufferedByteCount > 0 { events.append(.truncated(.contentLength)) }
        case .body(let length):
            // A complete header block promising a body that never came is an error too.
            if length > 0 { events.append(.truncated(.contentLength)) }
        case .start, .skippingLine, .skippingBody:
            break
        }
        buffer.removeAll()
        head = 0
        state = .start
        return events
    }

    private mutating func drain(into events: inout [FrameEvent]) {
        while step(into: &events) {}
        if head > 0, head >= buffer.count / 2 {
            buffer.removeFirst(head)
            if case .line(let scanned) = state { state = .line(scannedTo: scanned - head) }
            if case .headers(let scanned) = state { state = .headers(scannedTo: scanned - head) }
            head = 0
        }
    }

    /// One transition; false when more input is needed.
    private mutating func step(into events: inout [FrameEvent]) -> Bool {
        switch state {
        case .start:
            while head < buffer.count, isWhitespace(buffer[head]) { head += 1 }
            guard head < buffer.count else { return false }
            switch headerPrefixMatch() {
            case nil: return false
            case true?: state = .headers(scannedTo: head)
            case false?: state = .line(scannedTo: head)
            }
            return true

        case .line(let scanned):
            // The limit counts the bytes before the LF except one CR, so the verdict does not
            // depend on where reads happen to split the line.
            if let newline = firstIndex(of: 0x0A, from: scanned) {
                let crlf = newline > head && buffer[newline - 1] == 0x0D
                let size = newline - head - (crlf ? 1 : 0)
                let line = trimmedLine(head, newline)
                head = newline + 1
                state = .start
                if size > maximumMessageBytes {
                    events.append(.tooLarge(.ndjson, declaredLength: nil))
                } else if !line.isEmpty {
                    events.append(.message(line, .ndjson))
                }
                return true
            }
            let pending = buffer.count - head
            if pending > maximumMessageBytes + 1 || (pending == maximumMessageBytes + 1 && buffer[buffer.count - 1] != 0x0D) {
                events.append(.tooLarge(.ndjson, declaredLength: nil))
                head = buffer.count
                state = .skippingLine
                return false
            }
            state = .line(scannedTo: buffer.count)
            return false

        case .skippingLine:
            if let newline = firstIndex(of: 0x0A, from: head) {
                head = newline + 1
                state = .start
                return true
            }
            head = buffer.count
            return false

        case .headers(let scanned):
            guard let (headerEnd, bodyStart) = endOfHeaders(from: max(head, scanned - 3)) else {
                // No terminator yet, so the block ends at or after buffer.count - 2 (its first
                // LF): beyond that, it is too long whichever way the rest arrives.
                if buffer.count - head > Self.maximumHeaderBytes + 2 {
                    events.append(Self.headerTooLong)
                    skipThroughLine(at: head + Self.maximumHeaderBytes)
                    return true
                }
                state = .headers(scannedTo: buffer.count)
                return false
            }
            if headerEnd - head > Self.maximumHeaderBytes {
                events.append(Self.headerTooLong)
                skipThroughLine(at: head + Self.maximumHeaderBytes)
                return true
            }
            let headerBytes = Array(buffer[head..<headerEnd])
            head = bodyStart
            switch Self.contentLength(in: headerBytes) {
            case .failure(let problem):
                events.append(.badHeader(problem.message))
                state = .start
            case .success(let length) where length > maximumMessageBytes:
                events.append(.tooLarge(.contentLength, declaredLength: length))
                state = .skippingBody(remaining: length)
            case .success(let length):
                state = .body(length: length)
            }
            return true

        case .body(let length):
            guard buffer.count - head >= length else { return false }
            events.append(.message(Array(buffer[head..<head + length]), .contentLength))
            head += length
            state = .start
            return true

        case .skippingBody(let remaining):
            let available = buffer.count - head
            if available >= remaining {
                head += remaining
                state = .start
                return true
            }
            head = buffer.count
            state = .skippingBody(remaining: remaining - available)
            return false
        }
    }

    /// After an oversize header block: resume after the line in which it passed the limit (a
    /// position that does not depend on how reads split the input), like an oversize line.
    private mutating func skipThroughLine(at position: Int) {
        if let newline = firstIndex(of: 0x0A, from: position) {
            head = newline + 1
            state = .start
        } else {
            head = buffer.count
            state = .skippingLine
        }
    }

    private static let headerTooLong = FrameEvent.badHeader("The header block is longer than \(maximumHeaderBytes) bytes.")

    private func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    /// true: starts with "content-" (any case); false: something else; nil: too few bytes yet.
    private func headerPrefixMatch() -> Bool? {
        let prefix = Array("content-".utf8)
        for (offset, expected) in prefix.enumerated() {
            let index = head + offset
            guard index < buffer.count else { return nil }
            var byte = buffer[index]
            if byte >= 0x41, byte <= 0x5A { byte += 0x20 }
            if byte != expected { return false }
        }
        return true
    }

    private func firstIndex(of byte: UInt8, from start: Int) -> Int? {
        buffer.withUnsafeBufferPointer { pointer in
            var i = start
            while i < pointer.count {
                if pointer[i] == byte { return i }
                i += 1
            }
            return nil
        }
    }

    /// The line without its CR, if any.
    private func trimmedLine(_ start: Int, _ end: Int) -> [UInt8] {
        var end = end
        while end > start, buffer[end - 1] == 0x0D || buffer[end - 1] == 0x20 || buffer[end - 1] == 0x09 { end -= 1 }
        return Array(buffer[start..<end])
    }

    /// Finds the blank line ending the headers: CRLFCRLF, or LFLF from hand-typed input.
    private func endOfHeaders(from start: Int) -> (headerEnd: Int, bodyStart: Int)? {
        var i = start
        while i < buffer.count {
            if buffer[i] == 0x0A {
                if i + 1 < buffer.count, buffer[i + 1] == 0x0A { return (i, i + 2) }
                if i + 2 < buffer.count, buffer[i + 1] == 0x0D, buffer[i + 2] == 0x0A { return (i, i + 3) }
            }
            i += 1
        }
        return nil
    }

    struct HeaderProblem: Error { var message: String }

    static func contentLength(in header: [UInt8]) -> Result<Int, HeaderProblem> {
        var length: Int?
        // Split bytes, not a String: in Swift "\r\n" is one Character, so splitting text on "\n"
        // would never separate CRLF-terminated lines.
        for rawLine in header.split(separator: 0x0A, omittingEmptySubsequences: true) {
            let lineBytes = rawLine.last == 0x0D ? rawLine.dropLast() : rawLine[...]
            let line = String(decoding: lineBytes, as: UTF8.self)[...]
            guard let colon = line.firstIndex(of: ":") else {
                return .failure(HeaderProblem(message: "A header line has no ':'."))
            }
            let name = line[..<colon].trimmingCharacters(in: " \t").lowercased()
            guard name == "content-length" else { continue }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(value) else {
                return .failure(HeaderProblem(message: "Content-Length must be a decimal number of bytes."))
            }
            // RFC 9110 §8.6: repeats must agree, otherwise the message's end is ambiguous.
            if let earlier = length, earlier != n {
                return .failure(HeaderProblem(message: "The header block has two different Content-Length values."))
            }
            length = n
        }
        guard let length else {
            return .failure(HeaderProblem(message: "The header block has no Content-Length."))
        }
        return .success(length)
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self[...]
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
