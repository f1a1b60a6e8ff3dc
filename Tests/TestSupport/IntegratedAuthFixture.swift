import Foundation
import RPCCore

/// Real peers for Windows-integrated authentication (Tests/Fixtures/integrated-auth/
/// integrated_auth.py): a throwaway MIT Kerberos realm (krb5kdc on loopback) and HTTPS
/// acceptors that check Kerberos and NTLM with TLS channel binding (pyspnego, python-gssapi).
/// Each is its own Python process; it stops when released.
public final class IntegratedAuthProcess: @unchecked Sendable { // @unchecked: set once in init, `buffer` behind `lock`
    public let ready: JSONValue
    public let directory: String
    private let process: Process
    private let stdinPipe: Pipe
    private let output = Collector()

    private final class Collector: @unchecked Sendable { // @unchecked: guarded by `lock`
        let lock = NSCondition()
        var stdout = Data()
        var stderr = Data()
    }

    public static var scriptPath: String {
        TestPaths.repositoryRoot.appendingPathComponent("Tests/Fixtures/integrated-auth/integrated_auth.py").path
    }

    /// Starts `integrated_auth.py ROLE ARGS --dir <temp>` and waits for its ready line.
    public init(role: String, arguments: [String], environment: [String: String] = [:], timeout: Double = 30) throws {
        directory = TestPaths.makeTemporaryDirectory("integrated-auth-\(role)")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.scriptPath, role, "--dir", directory] + arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        stdinPipe = Pipe()
        let out = Pipe()
        let err = Pipe()
        process.standardInput = stdinPipe
        process.standardOutput = out
        process.standardError = err
        let output = self.output
        PipeDrain.start(out.fileHandleForReading) { data in
            output.lock.lock()
            output.stdout.append(data)
            output.lock.broadcast()
            output.lock.unlock()
        }
        PipeDrain.start(err.fileHandleForReading) { data in
            output.lock.lock()
            output.stderr.append(data)
            output.lock.unlock()
        }
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        output.lock.lock()
        while !output.stdout.contains(UInt8(ascii: "\n")) && process.isRunning && Date() < deadline {
            _ = output.lock.wait(until: Date().addingTimeInterval(0.1))
        }
        let line = output.stdout.split(separator: UInt8(ascii: "\n")).first.map { Array($0) }
        let stderr = String(decoding: output.stderr, as: UTF8.self)
        output.lock.unlock()
        guard let line, let info = try? JSONParser.parse(line) else {
            process.terminate()
            throw FakeExchangeError(description: "integrated_auth.py \(role) did not get ready: \(stderr)")
        }
        ready = info
    }

    deinit {
        try? stdinPipe.fileHandleForWriting.close()
        if process.isRunning { process.waitUntilExit() }
        if ProcessInfo.processInfo.environment["SYNCWIZARD_KEEP_TEST_FILES"] == nil {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    public func string(_ key: String) -> String { ready[key]?.stringValue ?? "" }
    public func int(_ key: String) -> Int { ready[key]?.intValue ?? 0 }

    /// The acceptor's JSON-lines log.
    public func logEntries() -> [JSONValue] {
        guard let data = FileManager.default.contents(atPath: string("log")) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap { try? JSONParser.parse(Array($0)) }
    }
}

/// The realm, started once per test process (its krb5.conf is what KRB5_CONFIG names).
public enum IntegratedAuthRealm {
    public static let shared: Result<IntegratedAuthProcess, any Error> = Result {
        // Never released (static): the script removes its directory itself when the test process exits.
        let keep = ProcessInfo.processInfo.environment["SYNCWIZARD_KEEP_TEST_FILES"] != nil
        let realm = try IntegratedAuthProcess(role: "realm", arguments: keep ? [] : ["--remove-on-exit"])
        setenv("KRB5_CONFIG", realm.string("krb5Config"), 1)
        return realm
    }

    /// An acceptor for mail.contoso.test (and autodiscover.contoso.test on its certificate) with
    /// the realm's keytab. `skewSeconds` runs it under libfaketime with its clock that far ahead.
    public static func acceptor(
        offer: String = "Negotiate,NTLM", requireCBT: Bool = false, noNTLM: Bool = false,
        ntlmUsers: [String] = ["CONTOSO:alice:Passw0rd!", "DOWN:bob:Secr3t!!"],
        skewSeconds: Int? = nil
    ) throws -> IntegratedAuthProcess {
        let realm = try shared.get()
        var arguments = [
            "--keytab", realm.string("keytab"), "--krb5-config", realm.string("krb5Config"), "--offer", offer,
            "--alias", "autodiscover.contoso.test",
        ]
        if requireCBT { arguments.append("--require-cbt") }
        if noNTLM { arguments.append("--no-ntlm") }
        for user in ntlmUsers { arguments += ["--ntlm-user", user] }
        var environment: [String: String] = [:]
        if let skewSeconds {
            environment["LD_PRELOAD"] = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
            environment["FAKETIME"] = "+\(skewSeconds)s"
            environment["FAKETIME_DONT_RESET"] = "1"
        }
        return try IntegratedAuthProcess(role: "acceptor", arguments: arguments, environment: environment)
    }
}
