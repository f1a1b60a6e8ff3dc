import Foundation
import RPCCore
import TestSupport
import Testing
import WizardContract

/// Hardening (issue 6) through the built binary: the bad-input suite and the fault programs in
/// Tests/Hardening/ (Python, standard library plus trustme), canary secrets at every log level,
/// the sign-in listener's sockets, and that TLS verification has no off switch.
///
/// One test at a time, light ones first: these tests start thousands of messages and hundreds of
/// processes, and run next to suites that measure time (HTTPClientTests). About 90 s in all;
/// SYNCWIZARD_HARDENING_FULL=1 runs 1000 kill -9 rounds instead of 100.
@Suite(.serialized) struct HardeningTests {}

extension HardeningTests {
    /// Mostly waiting: first, while the other suites run.
    @Suite struct FaultScriptTests {
        @Test func aServerTricklingOneBytePerSecondEndsInTimeout() async throws {
            let run = try await HardeningScript.run(["faults.py", "trickle", "--binary", TestPaths.binary], timeout: 120)
            #expect(run.status == 0, "\(run.output)")
            print(run.output)
        }

        /// Its own D-Bus session and daemon (keyring_session.sh), so it needs no test keyring.
        @Test(
            .enabled(if: HardeningScript.hasGnomeKeyring, "needs gnome-keyring-daemon, dbus-run-session and secret-tool"),
            arguments: [true, false])
        func keyringDaemonKilledRestartedAndLocked(_ activation: Bool) async throws {
            let session = HardeningScript.directory.appendingPathComponent("keyring_session.sh").path
            let run = try await HardeningScript.run(
                (activation ? [] : ["--no-activation"]) + [HardeningScript.python, "keyring_faults.py"],
                executable: session, timeout: 120)
            #expect(run.status == 0, "\(run.output)")
            print(run.output)
        }
    }

    /// Canary secrets — Exchange passwords (right and wrong), client secrets, authorization codes,
    /// access and refresh tokens — never on stdout, on stderr at any log level, in the trace file,
    /// in the profile files, in the sign-in page or in an error message. One level at a time: each
    /// run starts a fake Exchange and a fake identity provider.
    @Suite struct CanarySecretTests {
        static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

        @Test(arguments: levels)
        func noSecretLeavesTheProcessAtLogLevel(_ level: String) async throws {
            let tag = UUID().uuidString.prefix(8)
            let password = "Pw-canary-\(tag)-ok"
            let wrongPassword = "Pw-canary-\(tag)-wrong"
            let microsoftSecret = "ms-canary-\(tag)"
            let googleSecret = "google-canary-\(tag)"
            let badSecret = "bad-canary-\(tag)"
            let forgedCode = "code-canary-\(tag)"
            let typoSecret = "typo-canary-\(tag)"
            let exchange = try await FakeExchange.start(config: [
                "hosts": [
                    "mail.contoso.test": [
                        "ews": ["path": "/EWS/Exchange.asmx", "result": "success"],
                        "oab": ["path": "/OAB/abc/oab.xml", "status": 200],
                    ]
                ],
                "users": [.string("CONTOSO:alice:\(password)")],
            ])
            let idp = try FakeIdentityProvider()
            let directory = TestPaths.makeTemporaryDirectory("canary")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let caFile = directory + "/cas.pem"
            let trace = directory + "/trace.log"
            let cas = try String(contentsOfFile: exchange.caFile, encoding: .utf8) + "\n" + String(contentsOfFile: idp.caFile, encoding: .utf8)
            try cas.write(toFile: caFile, atomically: true, encoding: .utf8)
            var arguments = [
                "--secret-store", TestPaths.hasTestKeyring ? "keyring" : "memory", "--log-level", level,
                "--trace-file", trace, "--ca-file", caFile,
            ]
            for entry in idp.connectTo() + exchange.connectTo(hosts: ["mail.contoso.test"]) { arguments += ["--connect-to", entry] }
            let server = try ServerProcess(arguments: arguments)
            var pages: [String] = []

            _ = try await server.call(
                "setProviderSettings",
                [
                    "system": "superOffice", "clientId": "syncwizard-superoffice",
                    "clientSecret": "so-application-token", "environment": "online",
                ])
            _ = try await server.call("setProviderSettings", ["system": "microsoft365", "clientId": "ms", "clientSecret": .string(microsoftSecret)])
            _ = try await server.call("setProviderSettings", ["system": "google", "clientId": "g", "clientSecret": .string(googleSecret)])
            let id = try #require(try await server.call("createProfile", ["name": "Canary"])["id"])
            _ = try await server.call("selectCalendarSystem", ["profileId": id, "system": "exchange"])

            // Exchange: a wrong password (NTLM fails), then the right one (NTLM succeeds).
            func submit(_ pw: String) async throws {
                _ = try await server.call(
                    "submitExchangeCredentials",
                    [
                        "profileId": id, "userName": "alice", "domain": "CONTOSO",
                        "email": "alice@contoso.test", "password": .string(pw), "autodiscover": false,
                    ])
            }
            _ = try await server.call(
                "overrideEndpoints",
                [
                    "profileId": id, "ewsUrl": "https://mail.contoso.test/EWS/Exchange.asmx",
                    "oabUrl": "https://mail.contoso.test/OAB/abc/",
                ])
            try await submit(wrongPassword)
            var tested = try await server.call("testConnection", ["profileId": id, "system": "calendar"], timeout: 30)
            #expect(tested["results"]?.arrayValue?.first?["error"]?["data"]?["kind"] == "invalidCredentials")
            try await submit(password)
            tested = try await server.call("testConnection", ["profileId": id, "system": "calendar"], timeout: 30)
            #expect(tested["results"]?.arrayValue?.first?["ok"] == true, "\(JSONWriter.string(tested))")

            // SuperOffice: sign in (code, tokens), test, refresh.
            let started = try await server.call("startSignIn", ["profileId": id, "system": "superOffice"])
            let page = try idp.playBrowser(authorizationURL: try #require(started["authorizationUrl"]?.stringValue))
            pages.append(page.body)
            _ = try await server.call("awaitSignIn", ["signInId": try #require(started["signInId"])], timeout: 30)
            _ = try await server.call("testConnection", ["profileId": id, "system": "superOffice"], timeout: 30)
            try idp.expireAccessTokens()
            _ = try await server.call("testConnection", ["profileId": id, "system": "superOffice"], timeout: 30)

            // A forged callback carrying a code, on the listener and pasted.
            let second = try await server.call("startSignIn", ["profileId": id, "system": "superOffice"])
            let redirect = try #require(second["redirectUri"]?.stringValue)
            let forged = try idp.send(url: redirect + "/?code=\(forgedCode)&state=forged")
            pages.append(forged.body)
            let third = try await server.call("startSignIn", ["profileId": id, "system": "superOffice"])
            let pasted = try await server.callExpectingError(
                "completeSignIn",
                [
                    "signInId": try #require(third["signInId"]),
                    "redirectUrl": .string(redirect + "/?code=\(forgedCode)&state=forged"),
                ])
            #expect(["stateMismatch", "invalidParams"].contains(pasted["data"]?["kind"]?.stringValue ?? ""), "\(JSONWriter.string(pasted))")
            // Secrets in malformed requests: the errors name the field, never the value.
            _ = try await server.callExpectingError(
                "setProviderSettings",
                [
                    "system": "google", "clientId": "g", "clientSecret": .string(badSecret),
                    "clientId2": "x",
                ])
            // A typo'd member carrying the same secret as clientSecret.
            _ = try await server.callExpectingError(
                "setProviderSettings",
                [
                    "system": "google", "clientId": "g", "clientSecret": .string(typoSecret),
                    "clientSecert": .string(typoSecret),
                ])
            _ = try await server.callExpectingError(
                "submitExchangeCredentials",
                [
                    "profileId": id, "userName": "alice", "email": "alice@contoso.test",
                    "password": [.string(badSecret)],
                ])
            _ = try await server.callExpectingError(
                "setProviderSettings",
                [
                    "system": "google", "clientId": "g",
                    "clientSecret": .string(badSecret + String(repeating: "x", count: 5000)),
                ])

            server.closeInput()
            #expect(try await server.waitForExit(timeout: 20) == 0)
            let secrets =
                [password, wrongPassword, microsoftSecret, googleSecret, badSecret, forgedCode]
                + (try idp.issuedSecrets()).filter { $0.count >= 8 }
            #expect(secrets.count > 8, "the fake provider issued no codes or tokens")
            let stdout = String(decoding: server.stdoutBytes, as: UTF8.self)
            let stderr = server.stderrText
            let traceText = (try? String(contentsOfFile: trace, encoding: .utf8)) ?? ""
            let traceWritten = traceText.contains("submitExchangeCredentials")
            #expect(traceWritten, "the trace file was written")
            var files = ""
            for file in (try? FileManager.default.subpathsOfDirectory(atPath: server.configDirectory)) ?? [] {
                if let data = FileManager.default.contents(atPath: server.configDirectory + "/" + file) { files += String(decoding: data, as: UTF8.self) }
            }
            // Booleans, so that a failure names the place and the secret without dumping the texts.
            for secret in secrets {
                let short = String(secret.prefix(12)) + "…"
                let (inStdout, inStderr, inTrace, inFiles) = (
                    stdout.contains(secret), stderr.contains(secret), traceText.contains(secret), files.contains(secret)
                )
                let inPage = pages.contains { $0.contains(secret) }
                #expect(!inStdout, "stdout (replies and error messages) leaks \(short) at \(level)")
                #expect(!inStderr, "stderr leaks \(short) at \(level)")
                #expect(!inTrace, "the trace file leaks \(short) at \(level)")
                #expect(!inFiles, "a profile file leaks \(short) at \(level)")
                #expect(!inPage, "the sign-in page leaks \(short)")
            }
            if ["trace", "debug", "info"].contains(level) { #expect(stderr.contains("Serving on stdin/stdout"), "logging at \(level) is on") }
            // The typo'd secret (a misspelled member of a rejected request) is redacted too, trace included.
            #expect(
                !(stdout.contains(typoSecret) || stderr.contains(typoSecret) || files.contains(typoSecret) || traceText.contains(typoSecret)),
                "the misspelled member's secret leaks")
            _ = exchange
        }
    }

    /// The sign-in listener through the binary: it listens on 127.0.0.1 only (not 0.0.0.0, not
    /// IPv6), on the redirect URI's port, and is gone after every way a sign-in can end. (Unit
    /// tests cover the listener class; SuperOfficeSignInTests cover completion and cancel by
    /// connecting; this checks the process's own sockets.)
    @Suite struct SignInListenerTests {
        enum Ending: String, CaseIterable { case completed, forgedState, cancelled, timedOut, pasted }

        @Test(arguments: Ending.allCases)
        func listenerIsLoopbackOnlyAndClosesWhenTheSignInEnds(_ ending: Ending) async throws {
            let s = try await SuperOfficeSignInTests.setUp(extra: ending == .timedOut ? ["--sign-in-timeout", "2"] : [])
            let pid = s.server.process.processIdentifier
            #expect(try ListeningSockets.of(pid).isEmpty, "no listener before a sign-in")
            let (signInId, url, redirectUri) = try await SuperOfficeSignInTests.start(s)
            let port = try #require(URL(string: redirectUri)?.port)
            let sockets = try ListeningSockets.of(pid)
            #expect(sockets == ["127.0.0.1:\(port)"], "listening sockets during the sign-in: \(sockets)")
            switch ending {
            case .completed:
                _ = try s.idp.playBrowser(authorizationURL: url)
                _ = try await s.server.call("awaitSignIn", ["signInId": signInId], timeout: 30)
            case .forgedState:
                _ = try s.idp.send(url: redirectUri + "/?code=stolen&state=forged")
                #expect(try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId])["data"]?["kind"] == "stateMismatch")
            case .cancelled:
                _ = try await s.server.call("cancelSignIn", ["signInId": signInId])
            case .timedOut:
                #expect(try await s.server.callExpectingError("awaitSignIn", ["signInId": signInId], timeout: 15)["data"]?["kind"] == "signInTimedOut")
            case .pasted:
                let landed = try s.idp.redirectLocation(authorizationURL: url)
                _ = try await s.server.call("completeSignIn", ["signInId": signInId, "redirectUrl": .string(landed)])
            }
            var remaining = try ListeningSockets.of(pid)
            for _ in 0..<100 where !remaining.isEmpty {
                try await Task.sleep(nanoseconds: 20_000_000)
                remaining = try ListeningSockets.of(pid)
            }
            #expect(remaining.isEmpty, "still listening after the sign-in \(ending.rawValue): \(remaining)")
        }

        @Test func microsoftLocalhostRedirectAlsoListensOnIPv4LoopbackOnly() async throws {
            let s = try await CalendarSignInTests.setUp(system: "microsoft365")
            let started = try await s.server.call("startSignIn", ["profileId": s.profileId, "system": "microsoft365"])
            let redirectUri = try #require(started["redirectUri"]?.stringValue)
            let port = try #require(URL(string: redirectUri)?.port)
            #expect(try ListeningSockets.of(s.server.process.processIdentifier) == ["127.0.0.1:\(port)"])
            _ = try await s.server.call("cancelSignIn", ["signInId": try #require(started["signInId"])])
        }
    }

    /// TLS verification is always on: no flag turns it off, and no environment variable that turns
    /// it off (or swaps the trust store) in other tools changes anything.
    @Suite struct CertificateVerificationTests {
        @Test func helpListsNoSwitchThatDisablesVerification() throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TestPaths.binary)
            process.arguments = ["--help"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).lowercased()
            process.waitUntilExit()
            let options = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { $0.hasPrefix("-") }.map { String($0.split(separator: " ").first ?? "") }
            #expect(options.contains("--ca-file"), "\(options)")
            for option in options {
                for word in ["insecure", "verify", "skip", "unsafe", "no-check", "trust-all", "allow-untrusted", "disable", "tls", "ssl"] {
                    #expect(!option.contains(word), "\(option) looks like a switch for TLS verification")
                }
            }
        }

        @Test func environmentCannotTurnVerificationOff() async throws {
            let exchange = try await FakeExchange.start(config: [
                "hosts": ["mail.contoso.test": ["untrusted": true, "ews": ["path": "/EWS/Exchange.asmx", "result": "success"]]],
                "users": ["CONTOSO:alice:Passw0rd!"],
            ])
            let home = TestPaths.makeTemporaryDirectory("curlrc")
            defer { try? FileManager.default.removeItem(atPath: home) }
            try "insecure\n".write(toFile: home + "/.curlrc", atomically: true, encoding: .utf8)
            let untrustedDirectory = (exchange.untrustedCaFile as NSString).deletingLastPathComponent
            let environments: [[String: String]] = [
                [:],
                ["SSL_NO_VERIFY": "1", "SSL_VERIFY": "0", "SSL_VERIFY_PEER": "0"],
                ["CURL_CA_BUNDLE": ""],
                ["CURL_INSECURE": "1", "CURLOPT_SSL_VERIFYPEER": "0", "CURLOPT_SSL_VERIFYHOST": "0", "CURL_SSL_NO_VERIFY": "1"],
                ["GIT_SSL_NO_VERIFY": "1", "NODE_TLS_REJECT_UNAUTHORIZED": "0", "PYTHONHTTPSVERIFY": "0", "REQUESTS_CA_BUNDLE": ""],
                [
                    "SYNCWIZARD_INSECURE": "1", "SYNCWIZARD_TLS_VERIFY": "0", "SYNCWIZARD_NO_VERIFY": "1", "SYNCWIZARD_SKIP_TLS_VERIFY": "1",
                    "SYNCWIZARD_SSL_NO_VERIFY": "1",
                ],
                ["HOME": home, "CURL_HOME": home],
                // Pointing the usual trust-store variables at the server's own CA changes nothing either.
                ["SSL_CERT_FILE": exchange.untrustedCaFile, "SSL_CERT_DIR": untrustedDirectory, "CURL_CA_BUNDLE": exchange.untrustedCaFile],
            ]
            for environment in environments {
                var arguments = ["--secret-store", "memory", "--ca-file", exchange.caFile]
                for entry in exchange.connectTo(hosts: ["mail.contoso.test"]) { arguments += ["--connect-to", entry] }
                let server = try ServerProcess(arguments: arguments, environment: environment)
                let id = try #require(try await server.call("createProfile", ["name": "TLS"])["id"])
                _ = try await server.call("selectCalendarSystem", ["profileId": id, "system": "exchange"])
                _ = try await server.call(
                    "submitExchangeCredentials",
                    [
                        "profileId": id, "userName": "alice", "domain": "CONTOSO",
                        "email": "alice@contoso.test", "password": "Passw0rd!", "autodiscover": false,
                    ])
                _ = try await server.call("overrideEndpoints", ["profileId": id, "ewsUrl": "https://mail.contoso.test/EWS/Exchange.asmx"])
                let tested = try await server.call("testConnection", ["profileId": id, "system": "calendar"], timeout: 30)
                let error = tested["results"]?.arrayValue?.first?["error"]
                #expect(error?["data"]?["kind"] == "certificateUntrusted", "with \(environment.keys.sorted()): \(JSONWriter.string(tested))")
                server.closeInput()
                _ = try await server.waitForExit()
            }
            #expect(
                !exchange.requests().contains { $0["authenticatedUser"] != nil && $0["authenticatedUser"] != .null },
                "no request may have reached the untrusted server with credentials")
        }
    }

    /// The heaviest: last.
    @Suite struct LoadScriptTests {
        @Test func processesSharingADirectoryLoseNoUpdate() async throws {
            let run = try await HardeningScript.run(
                [
                    "faults.py", "concurrent", "--binary", TestPaths.binary, "--processes", "3",
                    "--writes", "300",
                ], timeout: 180)
            #expect(run.status == 0, "\(run.output)")
        }

        @Test func killNineDuringProfileWritesLosesNothing() async throws {
            let run = try await HardeningScript.run(
                ["faults.py", "kill9", "--binary", TestPaths.binary],
                timeout: HardeningScript.full ? 900 : 180)
            #expect(run.status == 0, "\(run.output)")
            print(run.output)
        }

        @Test func badInputInBothFramingsIsAnsweredByTheContract() async throws {
            let reportDirectory = TestPaths.makeTemporaryDirectory("bad-input")
            defer { try? FileManager.default.removeItem(atPath: reportDirectory) }
            let report = reportDirectory + "/report.json"
            let run = try await HardeningScript.run(["bad_input.py", "--binary", TestPaths.binary, "--json", report], timeout: 240)
            #expect(run.status == 0, "\(run.output)")
            // The summary is the figure the README quotes; keep it visible in the log.
            print(run.output.split(separator: "\n").prefix(30).joined(separator: "\n"))
        }
    }
}

// MARK: - Helpers

/// Runs the programs in Tests/Hardening/ (off the cooperative pool).
///
/// posix_spawn rather than Foundation.Process: the child gets a clean signal mask and default
/// dispositions (the test process blocks SIGTERM, which children inherit, and then
/// dbus-run-session cannot stop its dbus-daemon), a process group of its own (killed as a whole
/// on timeout), and writes into a file (a daemon that inherits the output cannot hold a pipe
/// open). The child is reaped here with waitpid.
enum HardeningScript {
    static let directory = TestPaths.repositoryRoot.appendingPathComponent("Tests/Hardening")
    static var python: String { ProcessInfo.processInfo.environment["SYNCWIZARD_TEST_PYTHON"] ?? "python3" }
    static var full: Bool { ProcessInfo.processInfo.environment["SYNCWIZARD_HARDENING_FULL"] == "1" }
    static var hasGnomeKeyring: Bool {
        ["/usr/bin/gnome-keyring-daemon", "/usr/bin/dbus-run-session", "/usr/bin/secret-tool"]
            .allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    struct Run: Sendable {
        var status: Int32
        var output: String
    }

    /// `arguments` are a script name in Tests/Hardening and its arguments (run with python3), or
    /// the arguments of `executable`. stdout and stderr are collected together.
    static func run(_ arguments: [String], executable: String? = nil, timeout: Double) async throws -> Run {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try runBlocking(arguments, executable: executable, timeout: timeout) })
            }
        }
    }

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    private static func runBlocking(_ arguments: [String], executable: String?, timeout: Double) throws -> Run {
        // At a lower priority: these programs are heavy (thousands of messages, hundreds of
        // processes) and run next to tests that measure time.
        var argv = ["/usr/bin/nice", "-n", "10"]
        if let executable {
            argv += [executable] + arguments.map { $0.hasSuffix(".py") ? directory.appendingPathComponent($0).path : $0 }
        } else {
            argv += ["/usr/bin/env", python, directory.appendingPathComponent(arguments[0]).path] + arguments.dropFirst()
        }
        var environment = ProcessInfo.processInfo.environment
        environment["SYNCWIZARD_BINARY"] = TestPaths.binary
        environment["PYTHONUNBUFFERED"] = "1"
        let outputPath = TestPaths.makeTemporaryDirectory("hardening-run") + "/output.txt"
        let outputFD = open(outputPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard outputFD >= 0 else { throw SpawnError(description: "cannot create \(outputPath)") }
        defer { close(outputFD) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGALRM, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outputFD, 1)
        posix_spawn_file_actions_adddup2(&actions, outputFD, 2)

        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for argument in cArguments { free(argument) }
            for variable in cEnvironment { free(variable) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, cEnvironment)
        guard spawned == 0 else { throw SpawnError(description: "posix_spawn \(argv[0]): \(String(cString: strerror(spawned)))") }

        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        var timedOut = false
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0, errno != EINTR { throw SpawnError(description: "waitpid: \(String(cString: strerror(errno)))") }
            if Date() > deadline {
                timedOut = true
                kill(-pid, SIGKILL) // its process group
                _ = waitpid(pid, &status, 0)
                break
            }
            usleep(50_000)
        }
        // Whatever the script left in its group (it should have stopped everything itself).
        kill(-pid, SIGKILL)
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: (outputPath as NSString).deletingLastPathComponent)
        if timedOut { return Run(status: -1, output: "killed after \(Int(timeout)) s\n" + output) }
        // Exited: the code; killed by a signal: 128 + the signal, as a shell reports it.
        let exited = status & 0x7f == 0
        return Run(status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output: output)
    }
}

/// The TCP sockets a process listens on, from /proc (no `ss -p` needed): "ADDRESS:PORT" strings,
/// IPv6 ones in brackets.
enum ListeningSockets {
    static func of(_ pid: Int32) throws -> [String] {
        var inodes: Set<String> = []
        let fdDirectory = "/proc/\(pid)/fd"
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: fdDirectory)) ?? [] {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: fdDirectory + "/" + fd),
                target.hasPrefix("socket:[")
            {
                inodes.insert(String(target.dropFirst(8).dropLast()))
            }
        }
        var found: [String] = []
        for (file, v6) in [("tcp", false), ("tcp6", true)] {
            guard let text = readProcFile("/proc/\(pid)/net/\(file)") else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9, fields[3] == "0A", inodes.contains(String(fields[9])) else { continue }
                found.append(address(String(fields[1]), v6: v6))
            }
        }
        return found.sorted()
    }

    /// procfs files report size 0: read until EOF.
    static func readProcFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// "0100007F:1F90" → "127.0.0.1:8080"; IPv6 as "[hex]:port".
    static func address(_ field: String, v6: Bool) -> String {
        let parts = field.split(separator: ":")
        let port = Int(parts[1], radix: 16) ?? -1
        let hex = String(parts[0])
        if !v6, hex.count == 8 {
            var octets: [String] = []
            var index = hex.endIndex
            for _ in 0..<4 {
                let start = hex.index(index, offsetBy: -2)
                octets.append(String(Int(hex[start..<index], radix: 16) ?? 0))
                index = start
            }
            return octets.joined(separator: ".") + ":\(port)"
        }
        return "[\(hex)]:\(port)"
    }
}
