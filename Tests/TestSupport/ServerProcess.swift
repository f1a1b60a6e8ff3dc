import Foundation
import JSONRPC
import RPCCore
import WizardContract

/// Paths of the checkout and of the built binary.
public enum TestPaths {
    public static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    /// The syncwizard binary the tests drive: $SYNCWIZARD_BINARY, or the debug build.
    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["SYNCWIZARD_BINARY"] { return path }
        return repositoryRoot.appendingPathComponent(".build/debug/syncwizard").path
    }

    public static var hasTestKeyring: Bool {
        ProcessInfo.processInfo.environment["SYNCWIZARD_TEST_KEYRING"] == "1"
    }

    public static func makeTemporaryDirectory(_ prefix: String = "syncwizard-test") -> String {
        let template = NSTemporaryDirectory() + "/\(prefix).XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { fatalError("mkdtemp failed") }
        return String(cString: made)
    }
}

public struct TestTimeout: Error, CustomStringConvertible {
    public var description: String
}

/// A syncwizard process driven over pipes, as a front end drives it.
public final class ServerProcess: @unchecked Sendable { // @unchecked: mutable state is guarded by `lock`.
    public let process = Process()
    public let configDirectory: String
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let lock = NSCondition()
    private var parser = FrameParser(maximumMessageBytes: 64 << 20)
    private var messages: [(JSONValue, Framing)] = []
    private var rawStdout: [UInt8] = []
    private var rawStderr: [UInt8] = []
    private var stdoutClosed = false

    /// `arguments` are passed to syncwizard; the config directory is a fresh temp dir unless given.
    public init(
        arguments: [String] = ["--secret-store", "memory"], configDirectory: String? = nil,
        environment: [String: String] = [:], executable: String = TestPaths.binary
    ) throws {
        self.configDirectory = configDirectory ?? TestPaths.makeTemporaryDirectory()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["SYNCWIZARD_CONFIG_DIR"] = self.configDirectory
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        try process.run()
        PipeDrain.start(stdoutPipe.fileHandleForReading) { [weak self] data in self?.received(stdout: data) }
        PipeDrain.start(stderrPipe.fileHandleForReading) { [weak self] data in
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            self.rawStderr.append(contentsOf: data)
            self.lock.unlock()
        }
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    private func received(stdout data: Data) {
        lock.lock()
        defer {
            lock.unlock()
            lock.broadcast()
        }
        if data.isEmpty {
            stdoutClosed = true
            for event in parser.finish() { record(event) }
            return
        }
        rawStdout.append(contentsOf: data)
        for event in parser.feed(Array(data)) { record(event) }
    }

    private func record(_ event: FrameEvent) {
        guard case .message(let bytes, let framing) = event else {
            messages.append((["unparseableOutput": .string(String(describing: event))], .ndjson))
            return
        }
        let value = (try? JSONParser.parse(bytes)) ?? ["unparseableOutput": .string(String(decoding: bytes, as: UTF8.self))]
        messages.append((value, framing))
    }

    // MARK: Sending

    public func sendRaw(_ bytes: [UInt8]) {
        stdinPipe.fileHandleForWriting.write(Data(bytes))
    }

    public func sendRaw(_ text: String) { sendRaw(Array(text.utf8)) }

    public func send(_ json: JSONValue, framing: Framing = .ndjson) {
        let body = JSONWriter.bytes(json)
        switch framing {
        case .ndjson: sendRaw(body + [0x0A])
        case .contentLength: sendRaw(Array("Content-Length: \(body.count)\r\n\r\n".utf8) + body)
        }
    }

    /// Sends a request and returns its id.
    @discardableResult
    public func request(_ method: String, _ params: JSONValue? = nil, id: JSONValue, framing: Framing = .ndjson) -> JSONValue {
        var object = JSONObject([("jsonrpc", "2.0"), ("id", id), ("method", .string(method))])
        if let params { object.append("params", params) }
        send(.object(object), framing: framing)
        return id
    }

    public func notify(_ method: String, _ params: JSONValue? = nil, framing: Framing = .ndjson) {
        var object = JSONObject([("jsonrpc", "2.0"), ("method", .string(method))])
        if let params { object.append("params", params) }
        send(.object(object), framing: framing)
    }

    public func closeInput() {
        try? stdinPipe.fileHandleForWriting.close()
    }

    // MARK: Receiving

    /// Waits for the next message that satisfies `predicate`, removing it from the queue.
    /// Polls with Task.sleep rather than blocking: tests run on Swift's small cooperative pool,
    /// and a blocked pool thread would starve everything else in the test process.
    public func next(timeout: Double = 30, where predicate: (JSONValue) -> Bool = { _ in true }) async throws -> (JSONValue, Framing) {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let (found, closed) = locked { () -> ((JSONValue, Framing)?, Bool) in
                guard let index = messages.firstIndex(where: { predicate($0.0) }) else { return (nil, stdoutClosed) }
                return (messages.remove(at: index), stdoutClosed)
            }
            if let found { return found }
            if closed { throw TestTimeout(description: "stdout closed while waiting; stderr: \(stderrSnapshot)") }
            if Date() > deadline {
                throw TestTimeout(
                    description: "no matching message within \(timeout) s; queued: \(pendingMessages.map { JSONWriter.string($0) }); stderr: \(stderrSnapshot)")
            }
            try await Task.sleep(nanoseconds: 2_000_000)
        }
    }

    /// The response to request `id`.
    public func response(to id: JSONValue, timeout: Double = 30) async throws -> JSONValue {
        try await next(timeout: timeout) { $0["id"] == id && $0["method"] == nil }.0
    }

    /// Sends a request and waits for its result; throws when it is an error.
    public func call(_ method: String, _ params: JSONValue? = nil, timeout: Double = 30) async throws -> JSONValue {
        let id = JSONValue.int(Self.nextID())
        request(method, params, id: id)
        let reply = try await response(to: id, timeout: timeout)
        if let result = reply["result"] { return result }
        throw RPCFailure(error: reply["error"] ?? .null)
    }

    /// Sends a request that must fail and returns its error object.
    public func callExpectingError(_ method: String, _ params: JSONValue? = nil, timeout: Double = 30) async throws -> JSONValue {
        let id = JSONValue.int(Self.nextID())
        request(method, params, id: id)
        let reply = try await response(to: id, timeout: timeout)
        guard let error = reply["error"] else { throw RPCFailure(error: ["unexpectedResult": reply["result"] ?? .null]) }
        return error
    }

    nonisolated(unsafe) private static var counter = 1000
    private static let counterLock = NSLock()
    static func nextID() -> Int {
        counterLock.lock()
        defer { counterLock.unlock() }
        counter += 1
        return counter
    }

    /// Waits for exit and returns the status.
    public func waitForExit(timeout: Double = 30) async throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { throw TestTimeout(description: "syncwizard did not exit within \(timeout) s") }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
        // Let the reader drain what is left in the pipe.
        let end = Date().addingTimeInterval(3)
        while Date() < end {
            if locked({ stdoutClosed }) { break }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
        return process.terminationStatus
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    public var stdoutBytes: [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        return rawStdout
    }
    public var stderrText: String { String(decoding: rawStderr, as: UTF8.self) }
    public var stderrSnapshot: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: rawStderr, as: UTF8.self)
    }
    public var pendingMessages: [JSONValue] {
        lock.lock()
        defer { lock.unlock() }
        return messages.map(\.0)
    }
}

public struct RPCFailure: Error, CustomStringConvertible {
    public var error: JSONValue
    public var kind: String? { error["data"]?["kind"]?.stringValue }
    public var description: String { "RPC error: \(JSONWriter.string(error))" }
}
