#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Flags first: --help and --version print to the real stdout and exit.
let command = ServeCommand.parseOrExit()

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
    ServeCommand.exit(withError: error)
}
