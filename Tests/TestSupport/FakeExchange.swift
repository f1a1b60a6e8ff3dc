import Foundation
import RPCCore
import WizardContract

/// A fake on-premises Exchange (Tests/Fixtures/exchange/fake_exchange.py): Autodiscover POX,
/// EWS GetFolder and OAB over real TLS on loopback, NTLM checked by pyspnego, a plain-HTTP
/// listener for the redirect step and a UDP DNS server for SRV records. The config and log
/// formats are in Tests/Fixtures/exchange/README.md.
///
/// Reach it with libcurl `CURLOPT_CONNECT_TO` and the real host names:
///
///     let exchange = try await FakeExchange.start(config: [
///         "hosts": ["autodiscover.contoso.test": ["autodiscover": [...]]],
///         "users": ["CONTOSO:alice:Passw0rd!"],
///     ])
///     client.connectTo = exchange.connectTo(hosts: exchange.configuredHosts)
///     client.caFile = exchange.caFile
///
/// Each instance is its own Python process with its own CA, ports and log, so tests can run in
/// parallel. It stops when `stop()` is called or the object is released.
public final class FakeExchange: @unchecked Sendable { // @unchecked: `let`s are set once in init; the rest sits behind `output`'s lock.
    public let httpsPort: Int
    public let httpPort: Int
    public let dnsPort: Int
    /// PEM of the CA that issued every certificate except the "untrusted" hosts'. Give it to the client.
    public let caFile: String
    /// PEM of the CA behind `"untrusted": true` hosts. Never give it to the client under test.
    public let untrustedCaFile: String
    /// The JSON-lines log (see README.md). Every entry is on disk before the answer's first byte is sent.
    public let logFile: String
    /// Temporary directory holding config.json, log.jsonl and work/ (CA files, NTLM user file).
    public let directory: String
    /// The fixture's ready line as parsed.
    public let readyInfo: JSONValue

    private let process: Process
    private let stdinPipe: Pipe
    private let output: OutputCollector

    public static var scriptPath: String {
        TestPaths.repositoryRoot.appendingPathComponent("Tests/Fixtures/exchange/fake_exchange.py").path
    }

    /// Starts the fixture and waits (blocking this thread, normally 0.2–0.5 s) for its ready line.
    /// From async tests prefer `FakeExchange.start(config:)`, which waits off the cooperative pool.
    public init(config: JSONValue, startTimeout: Double = 15) throws {
        let directory = TestPaths.makeTemporaryDirectory("fake-exchange")
        self.directory = directory
        let configPath = directory + "/config.json"
        logFile = directory + "/log.jsonl"
        guard FileManager.default.createFile(atPath: configPath, contents: Data(JSONWriter.bytes(config))),
            FileManager.default.createFile(atPath: logFile, contents: Data())
        else {
            try? FileManager.default.removeItem(atPath: directory)
            throw FakeExchangeError(description: "cannot write the fake Exchange config into \(directory)")
        }

        let python = ProcessInfo.processInfo.environment["SYNCWIZARD_TEST_PYTHON"] ?? "python3"
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            python, Self.scriptPath, "--config", configPath, "--log", logFile,
            "--workdir", directory + "/work",
        ]
        stdinPipe = Pipe()
        let stdoutPipe = Pipe()
        let stderrPipe = Pipe()
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        let output = OutputCollector()
        self.output = output
        PipeDrain.start(stdoutPipe.fileHandleForReading) { output.append(stdout: $0) }
        PipeDrain.start(stderrPipe.fileHandleForReading) { output.append(stderr: $0) }
        let process = self.process
        // Stops what was started and removes the directory: deinit does not run when init throws.
        func failure(_ message: String) -> FakeExchangeError {
            Self.kill(process)
            try? FileManager.default.removeItem(atPath: directory)
            return FakeExchangeError(description: message)
        }
        do { try process.run() } catch { throw failure("cannot start \(python): \(error)") }

        let line: [UInt8]
        switch output.waitForReadyLine(timeout: startTimeout) {
        case .line(let bytes):
            line = bytes
        case .closed:
            output.waitForStderrEnd(timeout: 2) // the process is exiting: collect all it said
            let stderr = output.stderrText
            let hint = stderr.contains("ModuleNotFoundError") ? " (needs: pip install trustme pyspnego)" : ""
            throw failure("fake_exchange.py exited before it was ready\(hint); stderr: \(stderr)")
        case .timedOut:
            throw failure("fake_exchange.py printed no ready line within \(startTimeout) s; stderr: \(output.stderrText)")
        }
        let info: JSONValue
        do { info = try JSONParser.parse(line) } catch {
            throw failure("unreadable ready line \(String(decoding: line, as: UTF8.self)): \(error)")
        }
        guard let https = info["httpsPort"]?.intValue, let http = info["httpPort"]?.intValue,
            let dns = info["dnsPort"]?.intValue, let ca = info["caFile"]?.stringValue,
            let untrusted = info["untrustedCaFile"]?.stringValue
        else { throw failure("incomplete ready line: \(JSONWriter.string(info))") }
        readyInfo = info
        httpsPort = https
        httpPort = http
        dnsPort = dns
        caFile = ca
        untrustedCaFile = untrusted
    }

    /// Starts the fixture on a thread of its own, so the wait does not hold a cooperative-pool thread.
    public static func start(config: JSONValue, startTimeout: Double = 15) async throws -> FakeExchange {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try FakeExchange(config: config, startTimeout: startTimeout) })
            }
        }
    }

    deinit {
        stop()
        if ProcessInfo.processInfo.environment["SYNCWIZARD_KEEP_TEST_FILES"] == nil {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    // MARK: Addresses

    /// The HTTPS host names of the config (`hosts`), lower-cased.
    public var configuredHosts: [String] {
        readyInfo["certificates"]?.objectValue?.keys.sorted() ?? []
    }

    /// Hex SHA-256 of the DER leaf certificate served for `host` (nil for hosts not in `hosts`).
    public func certificateSHA256(host: String) -> String? {
        readyInfo["certificates"]?[host.lowercased()]?["sha256"]?.stringValue
    }

    /// `CURLOPT_CONNECT_TO` entries sending HOST:443 to the HTTPS listener.
    public func connectTo(hosts: [String]) -> [String] {
        hosts.map { "\($0):443:127.0.0.1:\(httpsPort)" }
    }

    /// `CURLOPT_CONNECT_TO` entries sending HOST:80 to the plain-HTTP listener.
    public func connectToHTTP(hosts: [String]) -> [String] {
        hosts.map { "\($0):80:127.0.0.1:\(httpPort)" }
    }

    // MARK: The log

    /// Every log entry so far (requests, TLS connections, DNS queries), oldest first.
    public func logEntries() -> [JSONValue] {
        guard let data = FileManager.default.contents(atPath: logFile) else { return [] }
        var entries: [JSONValue] = []
        var start = data.startIndex
        // Only complete lines: one may be being written right now.
        while let end = data[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = data[start..<end]
            if !line.isEmpty {
                entries.append(
                    (try? JSONParser.parse(Array(line)))
                        ?? ["unparseableLogLine": .string(String(decoding: line, as: UTF8.self))])
            }
            start = data.index(after: end)
        }
        return entries
    }

    /// HTTP requests (`"kind": "request"`), optionally only those for one host (SNI or Host header).
    public func requests(host: String? = nil) -> [JSONValue] {
        logEntries().filter {
            $0["kind"]?.stringValue == "request" && (host == nil || $0["host"]?.stringValue == host?.lowercased())
        }
    }

    /// TLS connections (`"kind": "connection"`): outcome "handshake", "handshakeFailed" or "hang".
    public func connections(host: String? = nil) -> [JSONValue] {
        logEntries().filter {
            $0["kind"]?.stringValue == "connection" && (host == nil || $0["host"]?.stringValue == host?.lowercased())
        }
    }

    /// DNS queries (`"kind": "dns"`).
    public func dnsQueries() -> [JSONValue] {
        logEntries().filter { $0["kind"]?.stringValue == "dns" }
    }

    /// Polls the log (with Task.sleep, never blocking) until `predicate` holds for its entries.
    @discardableResult
    public func waitForLog(timeout: Double = 10, until predicate: ([JSONValue]) -> Bool) async throws -> [JSONValue] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let entries = logEntries()
            if predicate(entries) { return entries }
            if Date() > deadline {
                throw FakeExchangeError(
                    description: "log condition not met within \(timeout) s; log: "
                        + entries.map { JSONWriter.string($0) }.joined(separator: "\n"))
            }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
    }

    /// What the fixture wrote on stderr (config errors, Python tracebacks); never secrets.
    public var stderrText: String { output.stderrText }

    public var isRunning: Bool { process.isRunning }

    // MARK: Stopping

    /// Closes the fixture's stdin (it exits on EOF) and waits up to 5 s, then terminates it.
    /// Safe to call more than once; the log stays readable until the object is released.
    public func stop() {
        guard output.markStopped() else { return }
        try? stdinPipe.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { Self.kill(process) }
    }

    private static func kill(_ process: Process) {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(2)
        while process.isRunning && Date() < deadline { usleep(10_000) }
    }
}

public struct FakeExchangeError: Error, CustomStringConvertible {
    public var description: String
}

/// Output of the fixture process, filled from the pipes' readability handlers.
private final class OutputCollector: @unchecked Sendable { // @unchecked: every stored property is guarded by `condition`.
    enum ReadyResult {
        case line([UInt8])
        case closed, timedOut
    }

    private let condition = NSCondition()
    private var stdout: [UInt8] = []
    private var stdoutClosed = false
    private var stderr: [UInt8] = []
    private var stderrClosed = false
    private var stopped = false

    func append(stdout data: Data) {
        condition.lock()
        if data.isEmpty { stdoutClosed = true } else { stdout.append(contentsOf: data) }
        condition.broadcast()
        condition.unlock()
    }

    func append(stderr data: Data) {
        condition.lock()
        if data.isEmpty { stderrClosed = true }
        stderr.append(contentsOf: data.prefix(max(0, (1 << 20) - stderr.count)))
        condition.broadcast()
        condition.unlock()
    }

    func waitForStderrEnd(timeout: Double) {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !stderrClosed && condition.wait(until: deadline) {}
    }

    func waitForReadyLine(timeout: Double) -> ReadyResult {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let newline = stdout.firstIndex(of: UInt8(ascii: "\n")) { return .line(Array(stdout[..<newline])) }
            if stdoutClosed { return .closed }
            if !condition.wait(until: deadline) { return .timedOut }
        }
    }

    var stderrText: String {
        condition.lock()
        defer { condition.unlock() }
        return String(decoding: stderr, as: UTF8.self)
    }

    /// True the first time only.
    func markStopped() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if stopped { return false }
        stopped = true
        return true
    }
}
