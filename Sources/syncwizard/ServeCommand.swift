#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import JSONRPC
import Keyring
import Logging
import SuperOfficeConnector
import Threading
import Wizard
import WizardProtocol

/// `syncwizard`: serves the "Configure Systems" step over JSON-RPC 2.0 on stdin/stdout.
struct ServeCommand: ParsableCommand {
    static let version = "0.1.0"
    nonisolated(unsafe) static var protocolOutput: Int32 = STDOUT_FILENO

    static let configuration = CommandConfiguration(
        commandName: "syncwizard",
        abstract: "Serve the synchronizer wizard's \"Configure Systems\" step over JSON-RPC 2.0 on stdin/stdout.",
        discussion: """
            Send one JSON-RPC object per line (NDJSON) or LSP-style Content-Length frames; \
            replies use the framing of their request. Logs go to stderr. \
            Call rpc.discover for the full contract.
            """,
        version: version)

    enum SecretStoreChoice: String, ExpressibleByArgument, CaseIterable {
        case keyring, memory
    }

    @Option(help: "Log level on stderr: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = ProcessInfoLite.environment("SYNCWIZARD_LOG_LEVEL") ?? "notice"

    @Option(help: ArgumentHelp("Directory for profiles and provider settings (env SYNCWIZARD_CONFIG_DIR).",
                               discussion: "Default: $XDG_CONFIG_HOME/syncwizard, or ~/.config/syncwizard."))
    var configDir: String?

    @Option(help: "Where secrets live: 'keyring' (the desktop keyring through libsecret) or 'memory' (this process only, for scripts and tests; env SYNCWIZARD_SECRET_STORE).")
    var secretStore: SecretStoreChoice?

    @Option(help: "Mirror the protocol stream, with every secret redacted, into this file.")
    var traceFile: String?

    @Option(help: "Largest accepted message in bytes; larger ones are answered with messageTooLarge.")
    var maxMessageBytes: Int = 4 * 1024 * 1024

    @Option(help: "Extra trust anchors (PEM) added to the system's, e.g. your company's CA (env SYNCWIZARD_CA_FILE).")
    var caFile: String?

    @Option(help: ArgumentHelp("Connect to another address for a host name, as libcurl's CONNECT_TO; repeatable (env SYNCWIZARD_CONNECT_TO, comma separated).",
                               discussion: "HOST:PORT:CONNECT_HOST:CONNECT_PORT, e.g. mail.contoso.com:443:10.0.0.5:443. TLS is still verified against HOST.",
                               valueName: "HOST:PORT:CONNECT_HOST:CONNECT_PORT"))
    var connectTo: [String] = []

    @Option(help: "DNS server for Autodiscover's SRV lookup, IP[:PORT] (env SYNCWIZARD_DNS_SERVER; default: /etc/resolv.conf).")
    var dnsServer: String?

    @Option(help: "Seconds Autodiscover may take in all before it gives up.")
    var autodiscoverBudget: Double = 15

    @Option(help: ArgumentHelp("Authentication host of a SuperOffice environment, ENV=HOST (repeatable); defaults: sod=sod.superoffice.com, stage=qaonline.superoffice.com, online=online.superoffice.com.",
                               valueName: "ENV=HOST"))
    var superofficeHost: [String] = []

    @Option(help: "Seconds a browser sign-in stays open before it fails with signInTimedOut.")
    var signInTimeout: Double = 600

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical.")
        }
        _ = try superOfficeHosts()
        guard signInTimeout >= 1, signInTimeout <= 86400 else {
            throw ValidationError("--sign-in-timeout must be between 1 and 86400 seconds.")
        }
        guard autodiscoverBudget > 0, autodiscoverBudget <= 300 else {
            throw ValidationError("--autodiscover-budget must be between 0 and 300 seconds.")
        }
        if let file = caFile ?? ProcessInfoLite.environment("SYNCWIZARD_CA_FILE"), access(file, R_OK) != 0 {
            throw ValidationError("The CA file '\(file)' cannot be read.")
        }
        for entry in connectToEntries where entry.split(separator: ":", omittingEmptySubsequences: false).count != 4 {
            throw ValidationError("'\(entry)' is not HOST:PORT:CONNECT_HOST:CONNECT_PORT.")
        }
        guard maxMessageBytes >= 1024 else {
            throw ValidationError("--max-message-bytes must be at least 1024.")
        }
        if let env = ProcessInfoLite.environment("SYNCWIZARD_SECRET_STORE"), secretStore == nil,
           SecretStoreChoice(rawValue: env) == nil {
            throw ValidationError("SYNCWIZARD_SECRET_STORE must be 'keyring' or 'memory'.")
        }
    }

    var connectToEntries: [String] {
        let fromEnvironment = ProcessInfoLite.environment("SYNCWIZARD_CONNECT_TO")?
            .split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty } ?? []
        return connectTo + fromEnvironment
    }

    func superOfficeHosts() throws -> [SuperOfficeEnvironment: String] {
        var hosts = SuperOffice.defaultHosts
        for entry in superofficeHost {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let environment = SuperOfficeEnvironment(rawValue: parts[0]), Hostname.isPlausible(parts[1]) else {
                throw ValidationError("--superoffice-host takes ENV=HOST with ENV one of sod, stage, online.")
            }
            hosts[environment] = parts[1].lowercased()
        }
        return hosts
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .notice
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "syncwizard")

        let directory = configDir ?? ProcessInfoLite.environment("SYNCWIZARD_CONFIG_DIR") ?? Self.defaultConfigDirectory()
        let storeChoice = secretStore
            ?? ProcessInfoLite.environment("SYNCWIZARD_SECRET_STORE").flatMap(SecretStoreChoice.init(rawValue:))
            ?? .keyring
        let secrets: any SecretStore = storeChoice == .memory ? MemorySecretStore() : LibsecretStore()

        var trace: TraceFile?
        if let traceFile {
            do { trace = try TraceFile(path: traceFile) } catch { throw ValidationError(error.message) }
        }

        let output = OutputChannel(fd: Self.protocolOutput, trace: trace)
        let service = WizardService(
            store: ProfileStore(directory: directory), secrets: secrets,
            info: .init(name: "syncwizard", version: Self.version, maximumMessageBytes: maxMessageBytes),
            logger: logger,
            network: Network(options: .init(
                caFile: caFile ?? ProcessInfoLite.environment("SYNCWIZARD_CA_FILE"),
                connectTo: connectToEntries,
                dnsServer: dnsServer ?? ProcessInfoLite.environment("SYNCWIZARD_DNS_SERVER"),
                autodiscoverBudgetSeconds: autodiscoverBudget,
                userAgent: "syncwizard/\(Self.version)",
                superOfficeHosts: try superOfficeHosts())),
            signInTimeoutSeconds: signInTimeout,
            notify: { method, params in output.sendNotification(method: method, params: params) })
        var table = MethodTable()
        service.register(into: &table)

        var configuration = JSONRPCServer.Configuration()
        configuration.maximumMessageBytes = maxMessageBytes
        let server = JSONRPCServer(table: table, output: output, trace: trace, configuration: configuration, logger: logger)
        // Input ended: close every sign-in listener before the process goes.
        server.onClose {
            let done = DispatchSemaphoreLite()
            Task { await service.close(); done.signal() }
            done.wait(seconds: 2)
        }
        logger.info("Serving on stdin/stdout; profiles in \(directory); secrets in \(secrets.name).")
        let status = server.run(inputFD: STDIN_FILENO)
        Glibc.exit(status)
    }

    static func defaultConfigDirectory() -> String {
        if let xdg = ProcessInfoLite.environment("XDG_CONFIG_HOME"), xdg.hasPrefix("/") {
            return xdg + "/syncwizard"
        }
        let home = ProcessInfoLite.environment("HOME") ?? "."
        return home + "/.config/syncwizard"
    }
}

/// getenv without Foundation.
enum ProcessInfoLite {
    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let s = String(cString: value)
        return s.isEmpty ? nil : s
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = self[...]
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// Waits on a dedicated (non-pool) thread for a task to finish, with a bound.
final class DispatchSemaphoreLite: Sendable {
    private let lock = ConditionLock()
    private let flag = MutexBox(false)
    func signal() {
        lock.withLock { flag.withLock { $0 = true } }
        lock.broadcast()
    }
    func wait(seconds: Double) {
        let deadline = monotonicSeconds() + seconds
        lock.withLock {
            while !flag.withLock({ $0 }), monotonicSeconds() < deadline { lock.wait(untilMonotonic: deadline) }
        }
    }
}
