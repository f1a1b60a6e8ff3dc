import RPCCore
import Threading

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `--trace-file`: a mirror of the protocol stream for bug reports, one message per line,
/// `>>` client to server and `<<` server to client, with every secret replaced.
/// Input that is not valid JSON is not copied (it might be a secret typed into the wrong place);
/// only its length is recorded.
public final class TraceFile: Sendable {
    public enum Direction: String, Sendable {
        case incoming = ">>"
        case outgoing = "<<"
    }

    private let fd: Int32
    private let lock = ConditionLock()
    private let redactor: Redactor

    public init(path: String, redactor: Redactor = .shared) throws(RPCError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw RPCError(.invalidParams, "Cannot open the trace file '\(path)': \(String(cString: strerror(errno))).")
        }
        self.fd = fd
        self.redactor = redactor
    }

    deinit { close(fd) }

    public func record(direction: Direction, _ message: [UInt8]) {
        var line = Array("\(direction.rawValue) ".utf8)
        if let value = try? JSONParser.parse(message) {
            JSONWriter.write(redactor.redact(value), into: &line)
        } else {
            line.append(contentsOf: "[\(message.count) bytes that are not valid JSON, not copied]".utf8)
        }
        line.append(0x0A)
        lock.withLock {
            line.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n <= 0 {
                        if errno == EINTR { continue }
                        return
                    }
                    offset += n
                }
            }
        }
    }

}
