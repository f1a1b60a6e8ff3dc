import Foundation
import JSONRPC
import Logging
import RPCCore
import Testing
import Threading
import WizardContract

/// An in-process server on two pipes, with test methods: `fast`, `slow` (waits until
/// cancelled or released), `echo`, `progressing`, and a `boom` that throws a Swift error.
final class PipeServer: @unchecked Sendable { // @unchecked: fds are set once; reads happen on one test thread.
    let toServer: (read: Int32, write: Int32)
    let fromServer: (read: Int32, write: Int32)
    let server: JSONRPCServer
    let exitStatus = MutexBox<Int32?>(nil)
    var parser = FrameParser(maximumMessageBytes: 1 << 24)
    var pending: [(JSONValue, Framing)] = []
    static let release = MutexBox(false)

    init(configure: (inout JSONRPCServer.Configuration) -> Void = { _ in }) {
        var a: [Int32] = [0, 0]
        var b: [Int32] = [0, 0]
        pipe(&a)
        pipe(&b)
        toServer = (a[0], a[1])
        fromServer = (b[0], b[1])
        var table = MethodTable()
        table.registerRaw("fast", .inline { _ in ["fast": true] })
        table.registerRaw("echo", .async { params, _ in params ?? .null })
        table.registerRaw(
            "slow",
            .async { _, _ in
                while !PipeServer.release.withLock({ $0 }) {
                    try await Task.sleep(nanoseconds: 5_000_000)
                }
                return "slow done"
            })
        table.registerRaw(
            "progressing",
            .async { _, context in
                context.progress(stage: "one", message: "halfway", percent: 50)
                return "done"
            })
        table.registerRaw(
            "boom",
            .async { _, _ in
                struct Secretive: Error { let password = "hunter2-canary" }
                throw Secretive()
            })
        var configuration = JSONRPCServer.Configuration()
        configure(&configuration)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        server = JSONRPCServer(table: table, output: OutputChannel(fd: fromServer.write), configuration: configuration, logger: logger)
        let server = self.server
        let input = toServer.read
        let status = exitStatus
        let output = fromServer.write
        startDedicatedThread(name: "test-server") {
            let code = server.run(inputFD: input)
            status.withLock { $0 = code }
            close(output)
        }
    }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(toServer.write, $0.baseAddress, $0.count) }
    }

    func closeInput() { close(toServer.write) }

    /// Next message from the server, waiting up to `timeout` without blocking a pool thread.
    func next(timeout: Double = 5) async throws -> (JSONValue, Framing) {
        let deadline = Date().addingTimeInterval(timeout)
        while pending.isEmpty {
            var fds = pollfd(fd: fromServer.read, events: Int16(POLLIN), revents: 0)
            if poll(&fds, 1, 0) <= 0 {
                guard Date() < deadline else { throw TimeoutError() }
                try await Task.sleep(nanoseconds: 1_000_000)
                continue
            }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = buffer.withUnsafeMutableBytes { read(fromServer.read, $0.baseAddress, $0.count) }
            guard n > 0 else { throw TimeoutError() }
            for event in parser.feed(Array(buffer[0..<n])) {
                if case .message(let bytes, let framing) = event { pending.append((try JSONParser.parse(bytes), framing)) }
            }
        }
        return pending.removeFirst()
    }

    struct TimeoutError: Error {}
}

@Suite(.serialized) struct DispatchTests {
    @Test func slowRequestDoesNotDelayAFastOne() async throws {
        PipeServer.release.withLock { $0 = false }
        defer { PipeServer.release.withLock { $0 = true } }
        let s = PipeServer()
        s.send(
            #"{"jsonrpc":"2.0","id":1,"method":"slow"}"# + "\n" + #"{"jsonrpc":"2.0","id":2,"method":"echo","params":{"x":1}}"# + "\n"
                + #"{"jsonrpc":"2.0","id":3,"method":"fast"}"# + "\n")
        let first = try await s.next()
        let second = try await s.next()
        #expect(Set([first.0["id"], second.0["id"]]) == Set([.number("2"), .number("3")]))
        PipeServer.release.withLock { $0 = true }
        #expect(try await s.next().0 == ["jsonrpc": "2.0", "id": 1, "result": "slow done"])
    }

    @Test func cancelRequestAnswersWithCancelled() async throws {
        PipeServer.release.withLock { $0 = false }
        defer { PipeServer.release.withLock { $0 = true } }
        let s = PipeServer()
        s.send(#"{"jsonrpc":"2.0","id":"long","method":"slow"}"# + "\n")
        s.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"long"}}"# + "\n")
        let reply = try await s.next().0
        #expect(reply["id"] == "long")
        #expect(reply["error"]?["code"] == -32800)
        #expect(reply["error"]?["data"]?["kind"] == "cancelled")
    }

    @Test func idsAreEchoedExactly() async throws {
        let s = PipeServer()
        for id in [#""abc""#, "7", "1.50", "-0", "123456789012345678901234567890", #""""#, "null"] {
            s.send(#"{"jsonrpc":"2.0","id":\#(id),"method":"fast"}"# + "\n")
            let raw = try await s.next().0
            #expect(JSONWriter.string(raw["id"]!) == id)
        }
    }

    @Test func batchesGetOneArrayWithoutNotificationReplies() async throws {
        let s = PipeServer()
        s.send(
            #"[{"jsonrpc":"2.0","id":1,"method":"fast"},{"jsonrpc":"2.0","method":"fast"},{"jsonrpc":"2.0","id":2,"method":"echo","params":[1]},{"jsonrpc":"2.0","id":3,"method":"missing"},5]"#
                + "\n")
        let reply = try await s.next().0
        let items = try #require(reply.arrayValue)
        #expect(items.count == 4)
        #expect(Set(items.map { $0["id"] ?? .null }) == Set([.number("1"), .number("2"), .number("3"), .null]))
        #expect(items.first { $0["id"] == 3 }?["error"]?["code"] == -32601)
        // An all-notification batch gets nothing; the next request is answered normally.
        s.send(#"[{"jsonrpc":"2.0","method":"fast"}]"# + "\n" + #"{"jsonrpc":"2.0","id":9,"method":"fast"}"# + "\n")
        #expect(try await s.next().0["id"] == 9)
    }

    @Test func repliesUseTheFramingOfTheirRequest() async throws {
        let s = PipeServer()
        let body = #"{"jsonrpc":"2.0","id":1,"method":"fast"}"#
        s.send("Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        s.send(#"{"jsonrpc":"2.0","id":2,"method":"fast"}"# + "\n")
        let a = try await s.next()
        let b = try await s.next()
        #expect(a.1 == .contentLength && a.0["id"] == 1)
        #expect(b.1 == .ndjson && b.0["id"] == 2)
    }

    @Test func progressNotificationsFollowTheLastFraming() async throws {
        let s = PipeServer()
        let body = #"{"jsonrpc":"2.0","id":5,"method":"progressing"}"#
        s.send("Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let progress = try await s.next()
        #expect(progress.1 == .contentLength)
        #expect(progress.0["method"] == "progress")
        #expect(progress.0["params"] == ["requestId": 5, "stage": "one", "message": "halfway", "percent": 50])
        #expect(try await s.next().0["result"] == "done")
    }

    @Test func malformedInputIsAnsweredAndServingContinues() async throws {
        let s = PipeServer { $0.maximumMessageBytes = 2048 }
        let cases: [(String, Int)] = [
            ("{not json", -32700),
            (#"{"jsonrpc":"2.0","id":1}"#, -32600),
            (#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#, -32601),
            (String(repeating: "x", count: 5000), -32600),
            ("[]", -32600),
            ("\u{00}\u{00}", -32700),
        ]
        for (input, code) in cases {
            s.send(input + "\n")
            let reply = try await s.next().0
            #expect(reply["error"]?["code"] == .int(code), "for \(input.prefix(20))")
        }
        s.send(#"{"jsonrpc":"2.0","id":"after","method":"fast"}"# + "\n")
        #expect(try await s.next().0["result"] == ["fast": true])
    }

    @Test func oversizeMessageCarriesKindAndLimit() async throws {
        let s = PipeServer { $0.maximumMessageBytes = 1024 }
        s.send("Content-Length: 999999\r\n\r\n")
        let reply = try await s.next().0
        #expect(reply["error"]?["data"]?["kind"] == "messageTooLarge")
        #expect(reply["error"]?["data"]?["limitBytes"] == 1024)
        #expect(reply["error"]?["code"] == -32600)
    }

    @Test func unexpectedErrorsBecomeInternalErrorsWithoutDetails() async throws {
        let s = PipeServer()
        s.send(#"{"jsonrpc":"2.0","id":1,"method":"boom"}"# + "\n")
        let reply = try await s.next().0
        #expect(reply["error"]?["code"] == -32603)
        #expect(!JSONWriter.string(reply).contains("hunter2"))
    }

    @Test func eofCancelsInFlightWorkAnswersItAndExitsZero() async throws {
        PipeServer.release.withLock { $0 = false }
        defer { PipeServer.release.withLock { $0 = true } }
        let s = PipeServer()
        s.send(#"{"jsonrpc":"2.0","id":1,"method":"slow"}"# + "\n" + #"{"jsonrpc":"2.0","id":2,"method":"fast"}"#)
        s.closeInput()
        let a = try await s.next()
        let b = try await s.next()
        let byID = [a.0["id"]!: a.0, b.0["id"]!: b.0]
        #expect(byID[.number("2")]?["result"] == ["fast": true])
        #expect(byID[.number("1")]?["error"]?["code"] == -32800)
        let deadline = Date().addingTimeInterval(5)
        while s.exitStatus.withLock({ $0 }) == nil, Date() < deadline { usleep(10_000) }
        #expect(s.exitStatus.withLock { $0 } == 0)
    }

    @Test func everyPipelinedRequestIsAnsweredWhenEOFFollowsAtOnce() async throws {
        let s = PipeServer()
        var text = ""
        for i in 0..<2000 { text += #"{"jsonrpc":"2.0","id":\#(i),"method":"\#(i % 2 == 0 ? "fast" : "echo")","params":{}}"# + "\n" }
        // Write from another thread: the server pushes back once the reply pipe is full.
        let all = text
        let writer = Thread {
            s.send(all)
            s.closeInput()
        }
        writer.start()
        var seen = Set<JSONValue>()
        for _ in 0..<2000 { seen.insert(try await s.next().0["id"]!) }
        #expect(seen.count == 2000)
    }

    @Test func shutdownThenRequestsAreRefusedAndExitEnds() async throws {
        let s = PipeServer()
        s.send(#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"# + "\n")
        #expect(try await s.next().0 == ["jsonrpc": "2.0", "id": 1, "result": nil])
        s.send(#"{"jsonrpc":"2.0","id":2,"method":"fast"}"# + "\n")
        #expect(try await s.next().0["error"]?["data"]?["kind"] == "serverShuttingDown")
        s.send(#"{"jsonrpc":"2.0","method":"exit"}"# + "\n")
        let deadline = Date().addingTimeInterval(5)
        while s.exitStatus.withLock({ $0 }) == nil, Date() < deadline { usleep(10_000) }
        #expect(s.exitStatus.withLock { $0 } == 0)
    }
}
