#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A usage error: the message and a pointer to --help on stderr, exit status 64 (EX_USAGE).
func exitWithUsageError(_ error: ServeCommand.UsageError) -> Never {
    let text = "syncwizard: error: \(error.message)\nRun 'syncwizard --help' for the options.\n"
    _ = text.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    exit(64)
}

func printToStdout(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
        if written < 0, errno == EINTR { continue }
        guard written > 0 else { return }
        bytes = bytes.dropFirst(written)
    }
}

// `syncwizard diagnose …` is a command of its own: stdout is its report, not the protocol.
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "diagnose" {
    do {
        switch try DiagnoseCommand.parse(Array(CommandLine.arguments.dropFirst(2))) {
        case .help:
            printToStdout(DiagnoseCommand.parser.helpText(abstract: DiagnoseCommand.abstract, discussion: DiagnoseCommand.discussion))
            exit(0)
        case .run(let diagnose):
            signal(SIGPIPE, SIG_IGN)
            try diagnose.run()
        }
    } catch {
        exitWithUsageError(error)
    }
}

// Flags first: --help and --version print to the real stdout and exit.
let command: ServeCommand
do {
    switch try ServeCommand.parse(Array(CommandLine.arguments.dropFirst())) {
    case .help:
        printToStdout(ServeCommand.parser.helpText(abstract: ServeCommand.abstract, discussion: ServeCommand.discussion))
        exit(0)
    case .helpMarkdown:
        printToStdout(ServeCommand.parser.markdownTable())
        exit(0)
    case .version:
        printToStdout(ServeCommand.version + "\n")
        exit(0)
    case .serve(let parsed):
        command = parsed
    }
} catch {
    exitWithUsageError(error)
}

// stdout belongs to the protocol. Keep a private copy of it and point fd 1 at stderr, so that
// a stray print() from any library lands in the log instead of corrupting the stream.
// A client that goes away must not kill us with SIGPIPE mid-write: writes fail with EPIPE instead.
signal(SIGPIPE, SIG_IGN)
let protocolOutput = dup(STDOUT_FILENO)
if protocolOutput < 0 {
    _ = write(STDERR_FILENO, "syncwizard: cannot duplicate stdout\n", 36)
    exit(2)
}
_ = fcntl(protocolOutput, F_SETFD, FD_CLOEXEC)
dup2(STDERR_FILENO, STDOUT_FILENO)
ServeCommand.protocolOutput = protocolOutput

do {
    try command.run()
} catch {
    exitWithUsageError(error)
}
