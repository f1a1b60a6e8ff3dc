import Foundation
import JSONRPC
import RPCCore
import TestSupport
import Testing
import WizardContract

/// The built binary driven over pipes, as front ends drive it.
@Suite struct ServerEndToEndTests {
    @Test(arguments: [Framing.ndjson, Framing.contentLength])
    func wizardSessionInEitherFraming(_ framing: Framing) async throws {
        let server = try ServerProcess()
        server.request("initialize", ["clientInfo": ["name": "test"]], id: "init", framing: framing)
        let (initReply, replyFraming) = try await server.next()
        #expect(replyFraming == framing)
        #expect(initReply["result"]?["serverInfo"]?["name"] == "syncwizard")

        server.request("createProfile", ["name": "Sales"], id: 1, framing: framing)
        let profile = try #require(try await server.response(to: 1)["result"])
        let id = try #require(profile["id"]?.stringValue)
        #expect(profile["calendar"]?["system"] == .null)

        server.request("selectCalendarSystem", ["profileId": .string(id), "system": "exchange"], id: 2, framing: framing)
        #expect(try await server.response(to: 2)["result"]?["calendar"]?["system"] == "exchange")

        server.request("getWizardState", ["profileId": .string(id)], id: 3, framing: framing)
        let state = try #require(try await server.response(to: 3)["result"])
        #expect(state["step"] == "configureSystems")
        #expect(state["canContinue"] == false)
        #expect(state["calendar"]?["system"] == "exchange")
        let blockers = try #require(state["blockers"]?.arrayValue)
        #expect(blockers.map { $0["kind"]?.stringValue ?? "" } == ["providerNotConfigured", "credentialsRequired"])

        server.request("nextStep", ["profileId": .string(id)], id: 4, framing: framing)
        let error = try #require(try await server.response(to: 4)["error"])
        #expect(error["data"]?["kind"] == "stepIncomplete")
        #expect(error["data"]?["blockers"]?.arrayValue?.count == 2)

        server.request("listProfiles", nil, id: 5, framing: framing)
        #expect(try await server.response(to: 5)["result"]?["profiles"]?.arrayValue?.count == 1)
        server.request("deleteProfile", ["profileId": .string(id)], id: 6, framing: framing)
        #expect(try await server.response(to: 6)["result"] == ["deleted": true])
        server.request("getProfile", ["profileId": .string(id)], id: 7, framing: framing)
        #expect(try await server.response(to: 7)["error"]?["data"]?["kind"] == "profileNotFound")

        server.closeInput()
        #expect(try await server.waitForExit() == 0)
    }

    @Test func profilesPersistAcrossRunsInTheConfigDirectory() async throws {
        let first = try ServerProcess()
        let id = try #require(try await first.call("createProfile", ["name": "Kept"])["id"])
        first.closeInput()
        _ = try await first.waitForExit()
        let second = try ServerProcess(configDirectory: first.configDirectory)
        #expect(try await second.call("getProfile", ["profileId": id])["name"] == "Kept")
    }

    @Test func malformedInputIsAnsweredAndTheNextRequestWorks() async throws {
        let server = try ServerProcess(arguments: ["--secret-store", "memory", "--max-message-bytes", "4096"])
        let inputs: [(String, Int)] = [
            ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\"\n", -32700),
            ("\u{FF}\u{FE}\n", -32700),
            ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"createProfile\",\"params\":{\"name\":7}}\n", -32602),
            ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"createProfile\",\"params\":{\"name\":\"x\",\"extra\":1}}\n", -32602),
            ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getWizardState\",\"params\":{}}\n", -32602),
            ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"unknownMethod\"}\n", -32601),
            (String(repeating: "[", count: 3000) + "\n", -32700),
            ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"pad\":\"" + String(repeating: "a", count: 10_000) + "\"}}\n", -32600),
            ("Content-Length: 5000\r\n\r\n" + String(repeating: " ", count: 5000), -32600),
            ("Content-Length: 3\r\n\r\n{}}", -32700),
            ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\u{0}\n", -32700),
        ]
        for (input, code) in inputs {
            server.sendRaw(input)
            let reply = try await server.next().0
            #expect(reply["error"]?["code"] == .int(code), "for \(input.prefix(40)): \(JSONWriter.string(reply))")
            #expect(reply["error"]?["data"]?["kind"]?.stringValue != nil)
        }
        #expect(try await server.call("ping") == [:])
    }

    @Test func invalidParamsNameTheField() async throws {
        let server = try ServerProcess()
        let error = try await server.callExpectingError("selectCalendarSystem", ["profileId": "3f2b0c1e-1111-4222-8333-444455556666", "system": "lotus"])
        #expect(error["data"]?["field"] == "system")
        #expect(error["message"]?.stringValue?.contains("microsoft365") == true)
    }

    @Test func everyStdoutByteIsProtocolEvenAtTraceLogLevel() async throws {
        let server = try ServerProcess(arguments: ["--secret-store", "memory", "--log-level", "trace"])
        _ = try await server.call("initialize")
        _ = try await server.call("createProfile", ["name": "x"])
        server.closeInput()
        #expect(try await server.waitForExit() == 0)
        #expect(!server.pendingMessages.contains { $0["unparseableOutput"] != nil })
        #expect(server.stderrText.contains("Serving on stdin/stdout"))
    }

    @Test func discoverReturnsTheProtocolDocument() async throws {
        let server = try ServerProcess()
        let document = try await server.call("rpc.discover")
        let file = try JSONParser.parse(
            Array(FileManager.default.contents(atPath: TestPaths.repositoryRoot.appendingPathComponent("Protocol/openrpc.json").path)!))
        #expect(document == file)
    }

    @Test func eofWithWorkInFlightAnswersEverythingAndExitsZero() async throws {
        let server = try ServerProcess()
        var text = ""
        for i in 0..<500 { text += #"{"jsonrpc":"2.0","id":\#(i),"method":"\#(i % 3 == 0 ? "listProfiles" : "ping")"}"# + "\n" }
        server.sendRaw(text)
        server.closeInput()
        #expect(try await server.waitForExit() == 0)
        let replies = server.pendingMessages
        #expect(Set(replies.compactMap { $0["id"]?.intValue }).count == 500)
        // Quick work that was already read finishes instead of being cancelled.
        #expect(replies.allSatisfy { $0["result"] != nil })
    }

    @Test func aScriptPipingOneWriteAndClosingStdinGetsItsResult() async throws {
        let server = try ServerProcess()
        server.sendRaw(#"{"jsonrpc":"2.0","id":1,"method":"createProfile","params":{"name":"Piped"}}"#)
        server.closeInput()
        #expect(try await server.waitForExit() == 0)
        #expect(server.pendingMessages.first?["result"]?["name"] == "Piped")
    }

    @Test func versionAndHelpGoToStdout() async throws {
        for flag in ["--version", "--help"] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TestPaths.binary)
            process.arguments = [flag]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            #expect(!text.isEmpty, "\(flag)")
        }
    }

    /// Runs the binary with `arguments` to completion: (exit status, stdout, stderr).
    static func runToExit(_ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestPaths.binary)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }

    /// The command line's docs (scripts/sync-docs.sh writes them into the READMEs and openrpc.json).
    @Suite struct CommandLineTests {
        /// The hidden --help-markdown (the docs' option table, scripts/sync-docs.sh) lists exactly the
        /// options of --help, in its order, and --help does not mention it.
        @Test func helpMarkdownIsTheOptionTableOfHelp() throws {
            let (status, markdown, _) = try ServerEndToEndTests.runToExit(["--help-markdown"])
            #expect(status == 0)
            let (_, help, _) = try ServerEndToEndTests.runToExit(["--help"])
            let helpOptions = help.split(separator: "\n").filter { $0.hasPrefix("  --") }
                .map { String($0.dropFirst(2).split(separator: " ")[0]) }
                .filter { $0 != "--help" && $0 != "--version" }
            let lines = markdown.split(separator: "\n")
            #expect(lines.first == "| option | environment | default | what |")
            let tableOptions = lines.dropFirst(2).map { row in
                String(row.dropFirst("| `".count).prefix { $0 != " " && $0 != "`" })
            }
            #expect(tableOptions == helpOptions)
            #expect(tableOptions.count == 12)
            #expect(!help.contains("help-markdown"))
        }
    }

    @Test(arguments: [
        (["--log-levl", "debug"], "Unknown option '--log-levl'. Did you mean '--log-level'?"),
        (["--secret-store"], "Missing value for '--secret-store"),
        (["--secret-store", "vault"], "--secret-store must be 'keyring' or 'memory', not 'vault'."),
        (["--max-message-bytes=lots"], "--max-message-bytes takes a whole number of bytes, not 'lots'."),
        (["--config-dir", "/tmp/a", "--config-dir", "/tmp/b"], "'--config-dir' was given more than once."),
        (["serve"], "Unexpected argument 'serve'"),
        (["--config-dir="], "'--config-dir' needs a value"),
        (["--config-dir", "--log-level", "debug"], "Missing value for '--config-dir <directory>' (got the option '--log-level'"),
        (["--", "--log-level", "debug"], "Unexpected argument '--log-level'"),
        (["-v"], "Unknown option '-v'."),
        (["--connect-to", "a:443:b"], "'a:443:b' is not HOST:PORT:CONNECT_HOST:CONNECT_PORT."),
        (["--superoffice-host", "prod=x.example"], "--superoffice-host takes ENV=HOST"),
        (["--dns-server", "127.0.0.1:0"], "takes IPv4, IPv4:PORT, IPv6 or [IPv6]:PORT with a port from 1 to 65535, not '127.0.0.1:0'."),
        (["--dns-server", "127.0.0.1:5353x"], "not '127.0.0.1:5353x'."),
        (["--dns-server", "[::1]:70000"], "not '[::1]:70000'."),
        (["--dns-server=dns.example"], "not 'dns.example'."),
    ])
    func usageErrorsExit64WithAMessageAndNothingOnStdout(_ arguments: [String], _ message: String) throws {
        let (status, stdout, stderr) = try Self.runToExit(arguments)
        #expect(status == 64)
        #expect(stdout.isEmpty)
        #expect(stderr.contains(message), "\(stderr)")
        #expect(stderr.contains("syncwizard --help"))
    }

    @Test func optionsTakeTheirValueAfterAnEqualsSignOrAsTheNextArgument() async throws {
        let server = try ServerProcess(arguments: [
            "--secret-store=memory", "--max-message-bytes", "2048",
            "--connect-to=a.test:443:127.0.0.1:1", "--connect-to", "b.test:443:127.0.0.1:2",
        ])
        let result = try await server.call("initialize", ["clientInfo": ["name": "cli-test"]])
        #expect(result["capabilities"]?["maximumMessageBytes"] == 2048, "\(result)")
    }

    @Test func nothingAfterExitIsAnswered() async throws {
        let server = try ServerProcess()
        server.sendRaw(#"{"jsonrpc":"2.0","method":"exit"}"# + "\n" + #"{"jsonrpc":"2.0","id":1,"method":"ping"}"# + "\n")
        #expect(try await server.waitForExit() == 0)
        #expect(server.pendingMessages.isEmpty)
    }

    @Test func shutdownThenExit() async throws {
        let server = try ServerProcess()
        #expect(try await server.call("shutdown") == .null)
        #expect(try await server.callExpectingError("ping")["data"]?["kind"] == "serverShuttingDown")
        server.notify("exit")
        #expect(try await server.waitForExit() == 0)
    }

    @Test func cancelRequestOvertakesARequestWaitingForTheProfileLock() async throws {
        let server = try ServerProcess()
        let id = try #require(try await server.call("createProfile", ["name": "Busy"])["id"])
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["--no-fork", server.configDirectory + "/.lock", "sleep", "60"] // no fork: terminating it frees the lock
        try holder.run()
        // SIGKILL: the child may inherit a blocked SIGTERM from the test process.
        defer { kill(holder.processIdentifier, SIGKILL) }
        try await ProfileStoreLock.waitUntilLocked(server.configDirectory + "/.lock")
        server.request("selectCalendarSystem", ["profileId": id, "system": "google"], id: "waiting")
        // A cheap request is not held up by the one waiting for the lock.
        #expect(try await server.call("ping", timeout: 2) == [:])
        server.notify("$/cancelRequest", ["id": "waiting"])
        let reply = try await server.response(to: "waiting", timeout: 2)
        #expect(reply["error"]?["code"] == -32800)
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        #expect(try await server.call("getProfile", ["profileId": id])["calendar"]?["system"] == .null)
    }

    @Test func twoProcessesEditingOneDirectoryLoseNothing() async throws {
        let a = try ServerProcess()
        let b = try ServerProcess(configDirectory: a.configDirectory)
        let id = try #require(try await a.call("createProfile", ["name": "Shared"])["id"])
        let fingerprint = JSONValue.string(String(repeating: "ab", count: 32))
        // Both processes read-modify-write the same profile file and the same providers file.
        for i in 0..<40 {
            a.request("trustCertificate", ["profileId": id, "host": .string("a\(i).contoso.test"), "sha256": fingerprint], id: .int(i))
            b.request("trustCertificate", ["profileId": id, "host": .string("b\(i).contoso.test"), "sha256": fingerprint], id: .int(i))
            a.request("setProviderSettings", ["system": "superOffice", "clientId": .string("so-\(i)")], id: .int(1000 + i))
            b.request("setProviderSettings", ["system": "google", "clientId": .string("g-\(i)")], id: .int(1000 + i))
        }
        for i in 0..<40 {
            for server in [a, b] {
                #expect(try await server.response(to: .int(i))["result"] == ["trusted": true])
                #expect(try await server.response(to: .int(1000 + i))["result"] != nil)
            }
        }
        let pins = try #require(try await a.call("getProfile", ["profileId": id])["trustedCertificates"]?.arrayValue)
        #expect(pins.count == 80, "lost updates: \(80 - pins.count)")
        let providers = try #require(try await b.call("getProviderSettings")["providers"]?.arrayValue)
        #expect(Set(providers.compactMap { $0["system"]?.stringValue }) == ["superOffice", "google"])
    }

    @Test func killNineDuringWritesLeavesEveryProfileFileValid() async throws {
        let directory = TestPaths.makeTemporaryDirectory("kill9")
        var acknowledged: Set<String> = []
        for round in 0..<15 {
            let server = try ServerProcess(configDirectory: directory)
            var text = ""
            for i in 0..<200 { text += #"{"jsonrpc":"2.0","id":\#(i),"method":"createProfile","params":{"name":"r\#(round)-\#(i)"}}"# + "\n" }
            server.sendRaw(text)
            usleep(UInt32.random(in: 2_000...40_000))
            kill(server.process.processIdentifier, SIGKILL)
            _ = try? await server.waitForExit()
            for reply in server.pendingMessages { if let id = reply["result"]?["id"]?.stringValue { acknowledged.insert(id) } }
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: directory + "/profiles").filter { !$0.hasPrefix(".") }
        for file in files {
            let bytes = Array(FileManager.default.contents(atPath: directory + "/profiles/" + file)!)
            let json = try JSONParser.parse(bytes)
            #expect(Profile(json: json) != nil, "\(file) is not a valid profile")
        }
        let stored = Set(files.map { String($0.dropLast(5)) })
        #expect(acknowledged.isSubset(of: stored), "acknowledged profiles were lost")
    }
}
