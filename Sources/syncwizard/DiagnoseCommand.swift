import ConnectorCore
import Dispatch
import RPCCore
import Threading
import Wizard
import WizardContract

#if canImport(Glibc)
    import Glibc
#endif

/// `syncwizard diagnose --profile ID [--report FILE]`: the `diagnose` method for an
/// administrator without a front end. Each step is printed to stdout as it finishes; while one
/// runs, stderr shows a spinner (a terminal) or one line per step start (a pipe or a file).
/// Exit status 0 when no step failed, 1 otherwise (also when the diagnosis cannot run).
struct DiagnoseCommand {
    static let abstract = "Diagnose a profile's connections step by step (DNS, TCP, TLS, authentication, Autodiscover, EWS, sign-ins, consent)."
    static let discussion = """
        Runs the same steps as the diagnose method and prints each as it finishes: status, id, time, \
        what was found and, for a warning or failure, its kind and what to do. The options after the \
        diagnose ones are the server's (the same profiles, keyring and network settings).
        """

    /// Its own options first, then every option of the server (one table each, no copies).
    static let parser = CommandLineParser(
        commandName: "syncwizard diagnose",
        options: [
            .init(name: "profile", valueName: "ID", help: "The profile to diagnose (its id, as createProfile and listProfiles give it)."),
            .init(name: "report", valueName: "file", help: "Also write a Markdown report there (mode 0600), to attach to a support ticket."),
            .init(name: "system", valueName: "superOffice|calendar|all", help: "Which side to diagnose.", defaultValue: "all"),
        ] + ServeCommand.parser.options)

    var serve: ServeCommand
    var params: Diagnose.Params

    enum Parsed {
        case help
        case run(DiagnoseCommand)
    }

    static func parse(_ arguments: [String]) throws(CommandLineParser.UsageError) -> Parsed {
        guard case .values(var values) = try parser.parse(arguments) else { return .help }
        guard let profile = values.removeValue(forKey: "profile")?.last else {
            throw CommandLineParser.UsageError(message: "diagnose needs --profile ID (listProfiles shows the ids).")
        }
        var report = values.removeValue(forKey: "report")?.last
        if let path = report, !path.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
            guard getcwd(&buffer, buffer.count) != nil else { throw CommandLineParser.UsageError(message: "The current directory cannot be read.") }
            report = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + path
        }
        let systemText = values.removeValue(forKey: "system")?.last ?? "all"
        guard let target = TestConnection.Target(rawValue: systemText) else {
            throw CommandLineParser.UsageError(message: "--system must be superOffice, calendar or all, not '\(systemText)'.")
        }
        return .run(
            DiagnoseCommand(
                serve: try ServeCommand(values: values), params: Diagnose.Params(profileId: profile.lowercased(), target: target, reportPath: report)))
    }

    func run() throws(CommandLineParser.UsageError) -> Never {
        let logger = serve.bootstrapLogging()
        let service = try serve.makeService(logger: logger)
        let printer = StepPrinter(interactive: isatty(STDERR_FILENO) == 1)
        let outcome = MutexBox<Result<Diagnose.Result, RPCError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let params = self.params
        Task {
            do throws(RPCError) {
                let result = try await service.diagnose(params) { event in printer.show(event) }
                outcome.withLock { $0 = .success(result) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        printer.stop()
        switch outcome.withLock({ $0 }) {
        case .success(let result)?:
            printer.summary(result)
            exit(result.ok ? 0 : 1)
        case .failure(let error)?:
            printer.error("syncwizard diagnose: \(error.message)\(error.hint.map { " \($0)" } ?? "")\n")
            exit(1)
        case nil:
            exit(1)
        }
    }
}

/// Prints finished steps to stdout and the running step to stderr.
final class StepPrinter: Sendable {
    let interactive: Bool
    private let running = MutexBox<(title: String, frame: Int, active: Bool)?>(nil)

    init(interactive: Bool) {
        self.interactive = interactive
        if interactive { tick() }
    }

    func show(_ event: DiagnosisEvent) {
        switch event {
        case .started(let id, let title):
            if interactive {
                running.withLock { $0 = (title, 0, true) }
            } else {
                error("… \(id): \(title)\n")
            }
        case .finished(let step):
            if interactive {
                running.withLock { $0 = nil }
                error("\r\u{1B}[2K")
            }
            out(Self.format(step))
        }
    }

    static func format(_ step: DiagnosisStep) -> String {
        let label = ["pass": "PASS", "warn": "WARN", "fail": "FAIL", "skipped": "SKIP"][step.status.rawValue] ?? "?"
        var text = "\(label)  \(step.id)  (\(step.durationMs) ms)\n      \(step.title): \(step.message)\n"
        if let kind = step.kind { text += "      kind: \(kind.name)\n" }
        if let remediation = step.remediation { text += "      what to do: \(remediation)\n" }
        return text
    }

    func summary(_ result: Diagnose.Result) {
        func count(_ status: DiagnosisStep.Status) -> Int { result.steps.filter { $0.status == status }.count }
        var text = "\n\(result.ok ? "OK" : "FAILED"): \(count(.pass)) passed, \(count(.warn)) warnings, \(count(.fail)) failed, \(count(.skipped)) skipped"
        if let path = result.reportPath { text += "; report written to \(path)" }
        out(text + "\n")
    }

    /// A spinner on the terminal every 100 ms while a step runs.
    private func tick() {
        startTimer(seconds: 0.1) { [self] in
            let line: String? = running.withLock { state in
                guard var current = state, current.active else { return nil }
                current.frame += 1
                state = current
                let frames = ["|", "/", "-", "\\"]
                return "\r\u{1B}[2K\(frames[current.frame % 4]) \(current.title)"
            }
            if let line { error(line) }
            tick()
        }
    }

    func stop() {
        running.withLock { $0 = nil }
    }

    func out(_ text: String) { Self.write(STDOUT_FILENO, text) }
    func error(_ text: String) { Self.write(STDERR_FILENO, text) }

    static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }
}
