import Foundation
import Testing
import Threading

/// The DNS servers the lookups are tested against, each on loopback and started by the test:
/// dnsmasq (Debian's dnsmasq-base, installed by scripts/install-deps.sh --test) for well-formed
/// answers, and Tests/Fixtures/dns/odd_dns.py for the misbehaviour a real server never shows.
enum LoopbackDNS {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/dns")

    /// Whether ::1 can be bound here (containers without IPv6 have no ::1).
    static let hasIPv6Loopback: Bool = {
        let fd = socket(AF_INET6, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_addr = in6addr_loopback
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0 }
        }
    }()

    /// Reads one line (without the newline) from a pipe; nil at EOF.
    static func readLine(_ handle: FileHandle) -> String? {
        var line = Data()
        while true {
            let byte = handle.readData(ofLength: 1)
            if byte.isEmpty { return line.isEmpty ? nil : String(decoding: line, as: UTF8.self) }
            if byte.first == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a blocking start (spawn, wait for the ready line) on a thread of its own, never on
    /// the cooperative pool that the parallel tests share.
    static func start<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let result: Result<T, any Error>? = await runOnOwnThread(name: "dns-fixture") { Result { try body() } }
        return try result!.get()
    }

    /// Ends a fixture process without blocking the caller. SIGKILL, because a child spawned
    /// from a test thread inherits its blocked signals, SIGTERM included (dnsmasq would stay).
    static func stop(_ process: Process) {
        kill(process.processIdentifier, SIGKILL)
        Thread.detachNewThread { process.waitUntilExit() }
    }
}

/// Tests/Fixtures/dns/odd_dns.py: one zone per misbehaviour (README.md there).
final class OddDNSServer: @unchecked Sendable { // @unchecked: set in init, then only read.
    let port: Int
    let port6: Int?
    private let process = Process()
    private let input = Pipe()
    private let logFile: String

    init() throws {
        logFile = NSTemporaryDirectory() + "odd-dns-\(UUID().uuidString).jsonl"
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", LoopbackDNS.fixtures.appendingPathComponent("odd_dns.py").path, "--log", logFile]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        guard let line = LoopbackDNS.readLine(output.fileHandleForReading),
            let ready = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let port = ready["port"] as? Int
        else {
            process.terminate()
            throw LoopbackDNS.Failure(description: "odd_dns.py did not start (needs python3)")
        }
        self.port = port
        self.port6 = ready["port6"] as? Int
    }

    static func start() async throws -> OddDNSServer { try await LoopbackDNS.start { try OddDNSServer() } }

    deinit {
        try? input.fileHandleForWriting.close()
        LoopbackDNS.stop(process)
        try? FileManager.default.removeItem(atPath: logFile)
    }

    /// The transports ("udp", "tcp") of the queries for `name`, in order.
    func transports(for name: String) -> [String] {
        guard let text = try? String(contentsOfFile: logFile, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let entry = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                entry["name"] as? String == name
            else { return nil }
            return entry["transport"] as? String
        }
    }
}

/// dnsmasq answering from --srv-host lines only (no upstream, no /etc/hosts, no config file),
/// authoritative for `.test` so anything else there is NXDOMAIN.
final class Dnsmasq: @unchecked Sendable { // @unchecked: set in init, then only read.
    let port: Int
    private let process: Process

    static var executable: String? {
        ["/usr/sbin/dnsmasq", "/sbin/dnsmasq", "/usr/bin/dnsmasq"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// `records`: more dnsmasq options, e.g. `--host-record=NAME,IPv4,IPv6` or `--cname=ALIAS,TARGET`.
    init(srvHosts: [String], listen: [String] = ["127.0.0.1"], records: [String] = []) throws {
        guard let executable = Self.executable else {
            throw LoopbackDNS.Failure(description: "dnsmasq is not installed: run scripts/install-deps.sh --test")
        }
        var lastError = ""
        for _ in 0..<5 {
            let port = Int.random(in: 20000...60000)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            var arguments = [
                "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
                "--pid-file=", "--log-facility=-", "--bind-interfaces", "--port=\(port)",
                "--listen-address=\(listen.joined(separator: ","))", "--local=/test/",
            ]
            if getuid() == 0 { arguments.append("--user=root") } // no switch to the dnsmasq user
            arguments += srvHosts.map { "--srv-host=\($0)" } + records
            process.arguments = arguments
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            try process.run()
            // "started, version ..." comes once every socket is bound; a busy port ends the process.
            var output: [String] = []
            while let line = LoopbackDNS.readLine(errors.fileHandleForReading) {
                output.append(line)
                if line.contains("started, version") { break }
            }
            if process.isRunning, output.last?.contains("started, version") == true {
                self.port = port
                self.process = process
                // Keep draining stderr so dnsmasq never blocks on a full pipe.
                let handle = errors.fileHandleForReading
                Thread.detachNewThread { while !handle.readData(ofLength: 4096).isEmpty {} }
                return
            }
            process.waitUntilExit()
            lastError = output.joined(separator: " | ")
        }
        throw LoopbackDNS.Failure(description: "dnsmasq did not start: \(lastError)")
    }

    static func start(srvHosts: [String], listen: [String] = ["127.0.0.1"], records: [String] = []) async throws -> Dnsmasq {
        try await LoopbackDNS.start { try Dnsmasq(srvHosts: srvHosts, listen: listen, records: records) }
    }

    deinit { LoopbackDNS.stop(process) }
}
