import Foundation
import RPCCore
import TestSupport
import Testing
import WizardContract

/// `--trace-file` mirrors the stream a client sees: every message, in stdout's order, with only
/// the secrets replaced. Error codes, ids and everything else stay readable.
@Suite struct TraceFileTests {
    @Test func traceIsTheStreamTheClientSawExceptTheSecrets() async throws {
        let trace = TestPaths.makeTemporaryDirectory("trace") + "/trace.log"
        let server = try ServerProcess(arguments: ["--secret-store", "memory", "--trace-file", trace])
        let secret = "s3cret-\(UUID().uuidString)"
        // Compact JSON in the member order syncwizard writes, so the trace can be compared byte for byte.
        let requests = [
            #"{"jsonrpc":"2.0","id":1,"method":"nope"}"#,
            #"{"jsonrpc":"2.0","id":"two","method":"getProfile","params":{"profileId":"3f2b0c1e-1111-4222-8333-444455556666"}}"#,
            #"{"jsonrpc":"2.0","id":3,"method":"createProfile","params":{"name":5}}"#,
            #"{"jsonrpc":"2.0","id":4.50,"method":"setProviderSettings","params":{"system":"google","clientId":"g","clientSecret":"\#(secret)"}}"#,
            #"{"jsonrpc":"2.0","id":5,"method":"completeSignIn","params":{"signInId":"x","redirectUrl":"http://127.0.0.1:1/?code=\#(secret)&state=s"}}"#,
        ]
        for request in requests {
            server.sendRaw(request + "\n")
            _ = try await server.next { $0["id"] != nil && $0["id"] != .null }
        }
        server.closeInput()
        #expect(try await server.waitForExit() == 0)

        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map(String.init)
        let incoming = lines.filter { $0.hasPrefix(">> ") }.map { String($0.dropFirst(3)) }
        let outgoing = lines.filter { $0.hasPrefix("<< ") }.map { String($0.dropFirst(3)) }
        let stdout = String(decoding: server.stdoutBytes, as: UTF8.self).split(separator: "\n").map(String.init)

        #expect(
            incoming
                == requests.map {
                    $0.replacingOccurrences(of: "\"\(secret)\"", with: "\"«redacted»\"")
                        .replacingOccurrences(of: "\"http://127.0.0.1:1/?code=\(secret)&state=s\"", with: "\"«redacted»\"")
                })
        #expect(outgoing == stdout, "the trace lists what stdout carried, in its order")
        #expect(!lines.joined().contains(secret))
        // The error codes are there as numbers, not redacted.
        for code in ["-32601", "-32602"] {
            #expect(outgoing.contains { $0.contains(#""code":\#(code)"#) }, "\(code) missing from the trace")
        }
        #expect(outgoing.contains { $0.contains(#""id":4.50"#) })
    }
}
