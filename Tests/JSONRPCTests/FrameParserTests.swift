import JSONRPC
import RPCCore
import Testing
import WizardContract

@Suite struct FrameParserTests {
    let ping = Array(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.utf8)
    var framedPing: [UInt8] { Array("Content-Length: \(ping.count)\r\n\r\n".utf8) + ping }

    func messages(_ events: [FrameEvent]) -> [[UInt8]] {
        events.compactMap { if case .message(let m, _) = $0 { return m } else { return nil } }
    }

    @Test func ndjsonFedOneByteAtATime() {
        var parser = FrameParser(maximumMessageBytes: 1024)
        var events: [FrameEvent] = []
        for byte in ping + [0x0A] + ping + [0x0D, 0x0A] { events += parser.feed([byte]) }
        #expect(events == [.message(ping, .ndjson), .message(ping, .ndjson)])
    }

    @Test func contentLengthFedOneByteAtATime() {
        var parser = FrameParser(maximumMessageBytes: 1024)
        var events: [FrameEvent] = []
        for byte in framedPing + framedPing { events += parser.feed([byte]) }
        #expect(events == [.message(ping, .contentLength), .message(ping, .contentLength)])
    }

    @Test func everySplitOfTwoMessagesInOneStreamGivesTheSameMessages() {
        let stream = framedPing + ping + [0x0A] + framedPing
        for split in 0...stream.count {
            var parser = FrameParser(maximumMessageBytes: 1024)
            let events = parser.feed(Array(stream[..<split])) + parser.feed(Array(stream[split...]))
            #expect(events == [.message(ping, .contentLength), .message(ping, .ndjson), .message(ping, .contentLength)], "split at \(split)")
        }
    }

    @Test func headerNamesAnyCaseOtherHeadersIgnoredAndBareLineFeeds() {
        var parser = FrameParser(maximumMessageBytes: 1024)
        let text = "content-type: application/vscode-jsonrpc; charset=utf-8\nCONTENT-LENGTH:\(ping.count)\n\n"
        #expect(parser.feed(Array(text.utf8) + ping) == [.message(ping, .contentLength)])
    }

    @Test func crlfSeparatedHeaderLinesAsLSPClientsSendThem() {
        var parser = FrameParser(maximumMessageBytes: 1024)
        let text = "Content-Length: \(ping.count)\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"
        #expect(parser.feed(Array(text.utf8) + ping + Array(text.utf8) + ping) == [.message(ping, .contentLength), .message(ping, .contentLength)])
    }

    @Test func inputEndingRightAfterTheHeadersIsTruncated() {
        var parser = FrameParser(maximumMessageBytes: 1024)
        #expect(parser.feed(Array("Content-Length: 10\r\n\r\n".utf8)).isEmpty)
        #expect(parser.finish() == [.truncated(.contentLength)])
    }

    @Test func blankLinesBetweenMessagesAreSkipped() {
        var parser = FrameParser(maximumMessageBytes: 1024)
        #expect(messages(parser.feed([0x0A, 0x0D, 0x0A, 0x20] + ping + [0x0A, 0x0A])) == [ping])
    }

    @Test func oversizeLineIsReportedAndSkippedThenServingContinues() {
        var parser = FrameParser(maximumMessageBytes: 100)
        let huge = [UInt8](repeating: UInt8(ascii: "x"), count: 1000)
        var events: [FrameEvent] = []
        for chunk in stride(from: 0, to: huge.count, by: 64) { events += parser.feed(Array(huge[chunk..<min(chunk + 64, huge.count)])) }
        events += parser.feed([0x0A] + Array(#"{"a":1}"#.utf8) + [0x0A])
        #expect(events == [.tooLarge(.ndjson, declaredLength: nil), .message(Array(#"{"a":1}"#.utf8), .ndjson)])
        #expect(parser.bufferedByteCount < 200)
    }

    /// Fuzz finding frame-limit-crlf: the verdict on a line at the limit must not depend on
    /// where reads split it. One CR before the LF is framing; anything else counts.
    @Test(arguments: [("", true), ("\r", true), (" ", false), ("\t\r", false), ("\r\r", false)])
    func lineAtTheLimitGetsOneVerdictWhateverTheSplit(_ tail: String, _ fits: Bool) {
        let limit = 64
        let body = [UInt8](repeating: UInt8(ascii: "1"), count: limit)
        let stream = body + Array(tail.utf8) + [0x0A] + ping + [0x0A]
        let expected: [FrameEvent] = [fits ? .message(body, .ndjson) : .tooLarge(.ndjson, declaredLength: nil), .message(ping, .ndjson)]
        for split in 0...stream.count {
            var parser = FrameParser(maximumMessageBytes: limit)
            let events = parser.feed(Array(stream[..<split])) + parser.feed(Array(stream[split...])) + parser.finish()
            #expect(events == expected, "tail \(Array(tail.utf8)), split at \(split)")
        }
        var bytewise = FrameParser(maximumMessageBytes: limit)
        #expect(stream.flatMap { bytewise.feed([$0]) } + bytewise.finish() == expected)
    }

    /// Fuzz finding frame-header-limit: a header block over 8 KiB is refused whether it arrives in
    /// one read or in pieces, and the stream resumes after the line in which it passed the limit.
    @Test(arguments: ["\n\n", "\r\n\r\n", "\n\r\n"])
    func headerBlockOverTheLimitIsRefusedWhateverTheSplit(_ terminator: String) {
        let header = "Content-Length: 2\r\nX-Pad: " + String(repeating: "a", count: 9000) + terminator
        let stream = Array(header.utf8) + Array("{}".utf8) + [0x0A] + framedPing
        var splits = Array(stride(from: 0, through: stream.count, by: 97))
        splits += (8185...8200).map { $0 } + (header.utf8.count - 4...header.utf8.count + 1).map { $0 }
        for split in splits {
            var parser = FrameParser(maximumMessageBytes: 1 << 20)
            let events = parser.feed(Array(stream[..<split])) + parser.feed(Array(stream[split...])) + parser.finish()
            #expect(events.count == 3, "split at \(split): \(events)")
            guard case .badHeader(let problem)? = events.first else {
                Issue.record("split at \(split): expected badHeader first, got \(events)")
                continue
            }
            #expect(problem.contains("8192"))
            #expect(Array(events.dropFirst()) == [.message(Array("{}".utf8), .ndjson), .message(ping, .contentLength)], "split at \(split)")
            #expect(parser.bufferedByteCount == 0)
        }
    }

    /// A header line that never ends within the limit (what bad_input.py sends): refused, and the
    /// next line is served.
    @Test func endlessHeaderLineIsRefusedAndTheNextLineServedWhateverTheSplit() {
        let stream = Array(("Content-Length: 5" + String(repeating: "x", count: 9000) + "\n").utf8) + ping + [0x0A] + framedPing
        for split in Array(stride(from: 0, through: stream.count, by: 89)) + Array(8185...8200) {
            var parser = FrameParser(maximumMessageBytes: 1 << 20)
            let events = parser.feed(Array(stream[..<split])) + parser.feed(Array(stream[split...])) + parser.finish()
            #expect(events.count == 3, "split at \(split): \(events)")
            guard case .badHeader? = events.first else {
                Issue.record("split at \(split): expected badHeader first, got \(events)")
                continue
            }
            #expect(Array(events.dropFirst()) == [.message(ping, .ndjson), .message(ping, .contentLength)], "split at \(split)")
        }
    }

    @Test func headerBlockAtTheLimitIsParsed() {
        let prefix = "Content-Length: \(ping.count)\r\nX-Pad: "
        let header = prefix + String(repeating: "a", count: 8192 - prefix.utf8.count - 1) + "\r"
        #expect(header.utf8.count == 8192)
        let stream = Array((header + "\n\r\n").utf8) + ping
        for split in 8180...stream.count {
            var parser = FrameParser(maximumMessageBytes: 1 << 20)
            #expect(parser.feed(Array(stream[..<split])) + parser.feed(Array(stream[split...])) == [.message(ping, .contentLength)], "split at \(split)")
        }
    }

    @Test func oversizeContentLengthIsSkippedWithoutBuffering() {
        var parser = FrameParser(maximumMessageBytes: 100)
        var events = parser.feed(Array("Content-Length: 5000\r\n\r\n".utf8))
        for _ in 0..<50 { events += parser.feed([UInt8](repeating: 0x20, count: 100)) }
        #expect(parser.bufferedByteCount == 0)
        events += parser.feed(framedPing)
        #expect(events == [.tooLarge(.contentLength, declaredLength: 5000), .message(ping, .contentLength)])
    }

    @Test(arguments: [
        "Content-Type: x\r\n\r\n", "Content-Length: ten\r\n\r\n", "Content-Length: -1\r\n\r\n", "Content-Length 4\r\n\r\n",
        "Content-Length: 2\r\nContent-Length: 3\r\n\r\n",
    ])
    func unusableHeadersAreReported(_ header: String) {
        var parser = FrameParser(maximumMessageBytes: 1024)
        let events = parser.feed(Array(header.utf8) + ping + [0x0A])
        guard case .badHeader? = events.first else {
            Issue.record("expected a bad header, got \(events)")
            return
        }
    }

    /// RFC 9110 §8.6: the same Content-Length twice is one length.
    @Test func repeatedEqualContentLengthIsOneLength() {
        var parser = FrameParser(maximumMessageBytes: 1024)
        let header = "Content-Length: \(ping.count)\r\ncontent-length: \(ping.count)\r\n\r\n"
        #expect(parser.feed(Array(header.utf8) + ping) == [.message(ping, .contentLength)])
    }

    @Test func finalLineWithoutNewlineCountsAtEOF() {
        var parser = FrameParser(maximumMessageBytes: 1024)
        #expect(parser.feed(ping).isEmpty)
        #expect(parser.finish() == [.message(ping, .ndjson)])
    }

    @Test func contentLengthCutShortAtEOFIsTruncated() {
        var parser = FrameParser(maximumMessageBytes: 1024)
        _ = parser.feed(Array("Content-Length: 100\r\n\r\n{\"a\"".utf8))
        #expect(parser.finish() == [.truncated(.contentLength)])
    }
}

@Suite struct MessageDecoderTests {
    func decode(_ text: String) -> DecodedMessage { MessageDecoder.decode(Array(text.utf8)) }

    @Test func classifiesRequestsAndNotifications() {
        #expect(decode(#"{"jsonrpc":"2.0","id":"x","method":"a","params":{}}"#) == .single(.request(id: "x", method: "a", params: [:])))
        #expect(decode(#"{"jsonrpc":"2.0","method":"a"}"#) == .single(.notification(method: "a", params: nil)))
        #expect(decode(#"{"jsonrpc":"2.0","id":null,"method":"a"}"#) == .single(.request(id: .null, method: "a", params: nil)))
    }

    @Test(arguments: [
        #"{"id":1,"method":"a"}"#, #"{"jsonrpc":"1.0","id":1,"method":"a"}"#, #"{"jsonrpc":"2.0","id":1}"#,
        #"{"jsonrpc":"2.0","id":1,"method":5}"#, #"{"jsonrpc":"2.0","id":1,"method":"a","params":"x"}"#, "5", #""text""#,
    ])
    func invalidRequestsKeepTheirIdWhenUsable(_ text: String) {
        guard case .single(.invalid(let id, let error)) = decode(text) else {
            Issue.record("not classified as invalid: \(text)")
            return
        }
        #expect(error.kind == .invalidRequest)
        #expect(id == (text.contains("\"id\":1") ? .number("1") : .null))
    }

    @Test func objectOrBooleanIdsAreInvalid() {
        guard case .single(.invalid(let id, let error)) = decode(#"{"jsonrpc":"2.0","id":{"a":1},"method":"a"}"#) else {
            Issue.record("expected invalid")
            return
        }
        #expect(id == .null)
        #expect(error.kind == .invalidRequest)
    }

    @Test func emptyBatchIsOneInvalidRequest() {
        guard case .unanswerable(let error) = decode("[]") else {
            Issue.record("expected unanswerable")
            return
        }
        #expect(error.code == -32600)
    }

    @Test func parseErrorsAreUnanswerableWithCode32700() {
        guard case .unanswerable(let error) = decode("{nope") else {
            Issue.record("expected unanswerable")
            return
        }
        #expect(error.code == -32700)
        #expect(error.data["kind"] == "parseError")
    }
}
