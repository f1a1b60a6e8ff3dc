import Foundation
import HTTP

/// The Python servers of Support/tls_server.py, started once per test process.
/// The script exits when our end of its stdin closes, i.e. when the test process ends.
/// `@unchecked`: every stored property is set once in `init`; the pipe is kept only so our
/// end of the script's stdin stays open.
final class TestServer: @unchecked Sendable {
    struct Ports: Decodable, Sendable {
        var trusted: Int
        var untrusted: Int
        var plain: Int
        var silent: Int
        var reset: Int
        var sentinel: Int
        var refused: Int
        var caFile: String
        var untrustedPEM: String
        var untrustedSHA256: String
        var trustedSHA256: String
        var untrustedDER: String
    }

    let ports: Ports
    private let process: Process
    private let stdin: Pipe

    static let trustedHost = "autodiscover.contoso.test"
    static let untrustedHost = "untrusted.contoso.test"

    /// Started on first use; a static initialiser runs exactly once, even under parallel tests.
    private static let instance = Result { try TestServer() }

    static func shared() throws -> TestServer {
        try instance.get()
    }

    private init() throws {
        let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().appendingPathComponent("Support/tls_server.py")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path]
        stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()

        // One JSON line once every listener is bound.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            guard !chunk.isEmpty else {
                throw TestServerError(message: "tls_server.py exited before it was ready (is trustme installed? pip install trustme)")
            }
            line.append(chunk)
        }
        ports = try JSONDecoder().decode(Ports.self, from: line)
    }

    /// CONNECT_TO entries sending the test host names to the loopback listeners.
    var connectTo: [String] {
        [
            "\(Self.trustedHost):443:127.0.0.1:\(ports.trusted)",
            "\(Self.untrustedHost):443:127.0.0.1:\(ports.untrusted)",
            "silent.contoso.test:443:127.0.0.1:\(ports.silent)",
            "reset.contoso.test:443:127.0.0.1:\(ports.reset)",
            "refused.contoso.test:443:127.0.0.1:\(ports.refused)",
            "sentinel.contoso.test:80:127.0.0.1:\(ports.sentinel)",
            "plain.contoso.test:80:127.0.0.1:\(ports.plain)",
            // The trusted certificate reached under a name it does not carry.
            "wrongname.contoso.test:443:127.0.0.1:\(ports.trusted)",
        ]
    }

    func trustedURL(_ path: String) -> String { "https://\(Self.trustedHost)\(path)" }
    func untrustedURL(_ path: String) -> String { "https://\(Self.untrustedHost)\(path)" }

    struct Stats: Decodable {
        var paths: [String: [String]]
        var accepts: [String: Int]
        var maxConcurrentDelays: Int
    }

    /// Paths requested and connections accepted so far, per listener.
    func stats(using client: HTTPClient) async throws -> Stats {
        let response = try await client.send(HTTPRequest(url: trustedURL("/stats")))
        return try JSONDecoder().decode(Stats.self, from: Data(response.body))
    }
}

struct TestServerError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
