import DNS
import Dispatch
import JSONRPC
import Keyring
import Logging
import RPCCore
import SuperOfficeConnector
import Threading
import Wizard
import WizardContract

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `syncwizard`: serves the "Configure Systems" step over JSON-RPC 2.0 on stdin/stdout.
struct ServeCommand {
    static let version = "0.1.0"
    nonisolated(unsafe) static var protocolOutput: Int32 = STDOUT_FILENO

    static let abstract = "Serve the synchronizer wizard's \"Configure Systems\" step over JSON-RPC 2.0 on stdin/stdout."
    static let discussion = """
        Send one JSON-RPC object per line (NDJSON) or LSP-style Content-Length frames; replies use \
        the framing of their request. Logs go to stderr. Call rpc.discover for the full contract. \
        "syncwizard diagnose --profile ID [--report FILE]" diagnoses a profile's connections instead \
        (syncwizard diagnose --help).
        """

    /// Every option, in the order of --help. This table is the one source of the option docs:
    /// scripts/sync-docs.sh writes it (`syncwizard --help-markdown`) into README.md,
    /// Protocol/README.md and openrpc.json's info.description.
    static let parser = CommandLineParser(
        commandName: "syncwizard",
        options: [
            .init(
                name: "config-dir", valueName: "directory",
                help: "Directory for profiles and provider settings; created (mode 0700) when missing.",
                defaultValue: "`$XDG_CONFIG_HOME/syncwizard` if XDG_CONFIG_HOME is an absolute path, else `~/.config/syncwizard`",
                environment: "SYNCWIZARD_CONFIG_DIR"),
            .init(
                name: "secret-store", valueName: "keyring|memory",
                help:
                    "Where secrets live: `keyring` (the desktop keyring, Secret Service through libsecret) or `memory` (this process only, for scripts and tests). Chosen explicitly, never a silent fallback.",
                defaultValue: "keyring", environment: "SYNCWIZARD_SECRET_STORE"),
            .init(
                name: "log-level", valueName: "level",
                help: "Log level on stderr: `trace`, `debug`, `info`, `notice`, `warning`, `error` or `critical`.",
                defaultValue: "notice", environment: "SYNCWIZARD_LOG_LEVEL"),
            .init(
                name: "trace-file", valueName: "file",
                help: "Mirror the protocol stream into this file (`>>` in, `<<` out), with every secret redacted."),
            .init(
                name: "max-message-bytes", valueName: "bytes",
                help: "Largest accepted message in bytes, at least 1024; larger ones are answered with `messageTooLarge` and skipped.",
                defaultValue: "4194304"),
            .init(
                name: "ca-file", valueName: "file",
                help: "Extra trust anchors (PEM) added to the system's, e.g. your company's CA.",
                environment: "SYNCWIZARD_CA_FILE"),
            .init(
                name: "connect-to", valueName: "HOST:PORT:CONNECT_HOST:CONNECT_PORT",
                help:
                    "Reach HOST port PORT at CONNECT_HOST:CONNECT_PORT, as libcurl's CONNECT_TO (split DNS, tests), e.g. `mail.contoso.com:443:10.0.0.5:443`; TLS is still verified against HOST.",
                repeatable: true, environment: "SYNCWIZARD_CONNECT_TO", environmentNote: "comma separated, added to the options"),
            .init(
                name: "dns-server", valueName: "IP[:PORT]",
                help:
                    "DNS server for Autodiscover's SRV lookup: IPv4, IPv4:PORT, IPv6 or [IPv6]:PORT (numeric, port 1-65535, default 53); anything else is a usage error.",
                defaultValue: "every nameserver of `/etc/resolv.conf`", environment: "SYNCWIZARD_DNS_SERVER"),
            .init(
                name: "autodiscover-budget", valueName: "seconds",
                help: "Seconds Autodiscover may take in all (at most 300) before it gives up; every attempt is reported.",
                defaultValue: "15"),
            .init(
                name: "superoffice-host", valueName: "ENV=HOST",
                help: "Authentication host of a SuperOffice environment (`sod`, `stage` or `online`).",
                repeatable: true,
                defaultValue: SuperOfficeEnvironment.allCases
                    .map { "`\($0.rawValue)=\(SuperOffice.defaultHosts[$0] ?? "")`" }.joined(separator: ", ")),
            .init(
                name: "sign-in-timeout", valueName: "seconds",
                help: "Seconds a browser sign-in stays open (1 to 86400) before it fails with `signInTimedOut`.",
                defaultValue: "600"),
            .init(
                name: "diagnose-step-timeout", valueName: "seconds",
                help: "Seconds one `diagnose` step may wait for a server (a DNS answer, a TCP connection, a TLS handshake, one request), 1 to 120.",
                defaultValue: "10"),
        ])

    enum SecretStoreChoice: String, CaseIterable {
        case keyring, memory
    }

    enum Parsed {
        case help, helpMarkdown, version
        case serve(ServeCommand)
    }

    var logLevel = ProcessInfoLite.environment("SYNCWIZARD_LOG_LEVEL") ?? "notice"
    var configDir: String?
    var secretStore: SecretStoreChoice?
    var traceFile: String?
    var maxMessageBytes = 4 * 1024 * 1024
    var caFile: String?
    var connectTo: [String] = []
    var dnsServer: String?
    var autodiscoverBudget: Double = 15
    var superofficeHost: [String] = []
    var signInTimeout: Double = 600
    var diagnoseStepTimeout: Double = 10

    typealias UsageError = CommandLineParser.UsageError

    static func parse(_ arguments: [String]) throws(UsageError) -> Parsed {
        switch try parser.parse(arguments) {
        case .help: return .help
        case .helpMarkdown: return .helpMarkdown
        case .version: return .version
        case .values(let values): return .serve(try ServeCommand(values: values))
        }
    }

    /// The options every command shares, from parsed values.
    init(values: [String: [String]]) throws(UsageError) {
        var command = ServeCommand()
        if let value = values["log-level"]?.last { command.logLevel = value }
        command.configDir = values["config-dir"]?.last
        if let value = values["secret-store"]?.last {
            guard let choice = SecretStoreChoice(rawValue: value) else {
                throw UsageError(message: "--secret-store must be 'keyring' or 'memory', not '\(value)'.")
            }
            command.secretStore = choice
        }
        command.traceFile = values["trace-file"]?.last
        if let value = values["max-message-bytes"]?.last {
            guard let bytes = Int(value) else { throw UsageError(message: "--max-message-bytes takes a whole number of bytes, not '\(value)'.") }
            command.maxMessageBytes = bytes
        }
        command.caFile = values["ca-file"]?.last
        command.connectTo = values["connect-to"] ?? []
        command.dnsServer = values["dns-server"]?.last
        if let value = values["autodiscover-budget"]?.last {
            guard let seconds = Double(value), seconds.isFinite else { throw UsageError(message: "--autodiscover-budget takes seconds, not '\(value)'.") }
            command.autodiscoverBudget = seconds
        }
        command.superofficeHost = values["superoffice-host"] ?? []
        if let value = values["sign-in-timeout"]?.last {
            guard let seconds = Double(value), seconds.isFinite else { throw UsageError(message: "--sign-in-timeout takes seconds, not '\(value)'.") }
            command.signInTimeout = seconds
        }
        if let value = values["diagnose-step-timeout"]?.last {
            guard let seconds = Double(value), seconds.isFinite, seconds >= 1, seconds <= 120 else {
                throw UsageError(message: "--diagnose-step-timeout takes 1 to 120 seconds, not '\(value)'.")
            }
            command.diagnoseStepTimeout = seconds
        }
        try command.validate()
        self = command
    }

    init() {}

    func validate() throws(UsageError) {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw UsageError(message: "--log-level must be one of trace, debug, info, notice, warning, error, critical.")
        }
        _ = try superOfficeHosts()
        guard signInTimeout >= 1, signInTimeout <= 86400 else {
            throw UsageError(message: "--sign-in-timeout must be between 1 and 86400 seconds.")
        }
        guard autodiscoverBudget > 0, autodiscoverBudget <= 300 else {
            throw UsageError(message: "--autodiscover-budget must be between 0 and 300 seconds.")
        }
        if let file = caFile ?? ProcessInfoLite.environment("SYNCWIZARD_CA_FILE"), access(file, R_OK) != 0 {
            throw UsageError(message: "The CA file '\(file)' cannot be read.")
        }
        for entry in connectToEntries where entry.split(separator: ":", omittingEmptySubsequences: false).count != 4 {
            throw UsageError(message: "'\(entry)' is not HOST:PORT:CONNECT_HOST:CONNECT_PORT.")
        }
        if let server = dnsServer ?? ProcessInfoLite.environment("SYNCWIZARD_DNS_SERVER"), SRVResolver.parseServer(server) == nil {
            throw UsageError(
                message: "--dns-server (or SYNCWIZARD_DNS_SERVER) takes IPv4, IPv4:PORT, IPv6 or [IPv6]:PORT with a port from 1 to 65535, not '\(server)'.")
        }
        guard maxMessageBytes >= 1024 else {
            throw UsageError(message: "--max-message-bytes must be at least 1024.")
        }
        if let env = ProcessInfoLite.environment("SYNCWIZARD_SECRET_STORE"), secretStore == nil,
            SecretStoreChoice(rawValue: env) == nil
        {
            throw UsageError(message: "SYNCWIZARD_SECRET_STORE must be 'keyring' or 'memory'.")
        }
    }

    var connectToEntries: [String] {
        let fromEnvironment =
            ProcessInfoLite.environment("SYNCWIZARD_CONNECT_TO")?
            .split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty } ?? []
        return connectTo + fromEnvironment
    }

    func superOfficeHosts() throws(UsageError) -> [SuperOfficeEnvironment: String] {
        var hosts = SuperOffice.defaultHosts
        for entry in superofficeHost {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let environment = SuperOfficeEnvironment(rawValue: parts[0]), Hostname.isPlausible(parts[1]) else {
                throw UsageError(message: "--superoffice-host takes ENV=HOST with ENV one of sod, stage, online.")
            }
            hosts[environment] = parts[1].lowercased()
        }
        return hosts
    }

    /// Logging on stderr at the chosen level.
    func bootstrapLogging() -> Logger {
        let level = Logger.Level(rawValue: logLevel) ?? .notice
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "syncwizard")
    }

    var directory: String { configDir ?? ProcessInfoLite.environment("SYNCWIZARD_CONFIG_DIR") ?? Self.defaultConfigDirectory() }

    /// The wizard with this command's store, secrets and network settings.
    func makeService(logger: Logger, notify: @escaping @Sendable (String, JSONValue) -> Void = { _, _ in }) throws(UsageError) -> WizardService {
        let storeChoice =
            secretStore
            ?? ProcessInfoLite.environment("SYNCWIZARD_SECRET_STORE").flatMap(SecretStoreChoice.init(rawValue:))
            ?? .keyring
        let secrets: any SecretStore = storeChoice == .memory ? MemorySecretStore() : LibsecretStore()
        return WizardService(
            store: ProfileStore(directory: directory), secrets: secrets,
            info: .init(name: "syncwizard", version: Self.version, maximumMessageBytes: maxMessageBytes),
            logger: logger,
            network: Network(
                options: .init(
                    caFile: caFile ?? ProcessInfoLite.environment("SYNCWIZARD_CA_FILE"),
                    connectTo: connectToEntries,
                    dnsServer: dnsServer ?? ProcessInfoLite.environment("SYNCWIZARD_DNS_SERVER"),
                    autodiscoverBudgetSeconds: autodiscoverBudget,
                    userAgent: "syncwizard/\(Self.version)",
                    superOfficeHosts: try superOfficeHosts(),
                    diagnosisStepTimeoutSeconds: diagnoseStepTimeout)),
            signInTimeoutSeconds: signInTimeout,
            notify: notify)
    }

    func run() throws(UsageError) -> Never {
        let logger = bootstrapLogging()
        var trace: TraceFile?
        if let traceFile {
            do { trace = try TraceFile(path: traceFile) } catch { throw UsageError(message: error.message) }
        }
        let output = OutputChannel(fd: Self.protocolOutput, trace: trace)
        let service = try makeService(logger: logger) { method, params in output.sendNotification(method: method, params: params) }
        let directory = self.directory
        var table = MethodTable()
        service.register(into: &table)

        var configuration = JSONRPCServer.Configuration()
        configuration.maximumMessageBytes = maxMessageBytes
        let server = JSONRPCServer(table: table, output: output, trace: trace, configuration: configuration, logger: logger)
        // Input ended: close every sign-in listener before the process goes.
        server.onClose {
            let done = DispatchSemaphore(value: 0)
            Task {
                await service.close()
                done.signal()
            }
            _ = done.wait(timeout: .now() + 2)
        }
        logger.info("Serving on stdin/stdout; profiles in \(directory).")
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
