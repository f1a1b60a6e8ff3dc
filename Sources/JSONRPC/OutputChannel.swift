import RPCCore
import Threading

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where protocol bytes go: a file descriptor (the real stdout, duplicated at start-up).
///
/// Frames are appended to one pending buffer in order and written by whoever flushes: the
/// reader thread after each chunk it handled (no thread hop for quick replies), or a dedicated
/// writer thread woken for replies that finish later. Writes block when the client stops
/// reading, and the reader waits behind that, so memory stays bounded (backpressure).
public final class OutputChannel: Sendable {
    private let fd: Int32
    private let pendingLock = ConditionLock()
    private let state = PendingState()
    private let writeLock = ConditionLock()
    private let trace: TraceFile?

    // @unchecked: only touched under `pendingLock`.
    private final class PendingState: @unchecked Sendable {
        var bytes: [UInt8] = []
        var lastFraming: Framing = .ndjson
        var broken = false
    }

    public init(fd: Int32, trace: TraceFile? = nil) {
        self.fd = fd
        self.trace = trace
        let lock = pendingLock
        let state = self.state
        startDedicatedThread(name: "syncwizard-writer") { [weak self] in
            while true {
                lock.withLock { while state.bytes.isEmpty { lock.wait() } }
                guard let self else { return }
                self.flush()
            }
        }
    }

    /// The framing of the most recent client message; notifications use it.
    public var lastFraming: Framing {
        pendingLock.withLock { state.lastFraming }
    }

    public func noteIncoming(_ framing: Framing) {
        pendingLock.withLock { state.lastFraming = framing }
    }

    /// Queues one message. `wakeWriter: false` is for the reader thread, which flushes itself.
    public func send(_ body: [UInt8], framing: Framing, wakeWriter: Bool = true) {
        pendingLock.withLock {
            // Under the lock, so the trace lists messages in the order stdout carries them.
            trace?.record(direction: .outgoing, body)
            switch framing {
            case .ndjson:
                state.bytes.append(contentsOf: body)
                state.bytes.append(0x0A)
            case .contentLength:
                state.bytes.append(contentsOf: "Content-Length: \(body.count)\r\n\r\n".utf8)
                state.bytes.append(contentsOf: body)
            }
        }
        if wakeWriter { pendingLock.signal() }
    }

    public func sendNotification(method: String, params: JSONValue) {
        send(ResponseEncoder.notification(method: method, params: params), framing: lastFraming)
    }

    /// Writes everything queued so far. Returns false once the client has gone away.
    @discardableResult
    public func flush() -> Bool {
        writeLock.withLock {
            let chunk: [UInt8] = pendingLock.withLock {
                let taken = state.bytes
                state.bytes = []
                state.bytes.reserveCapacity(min(taken.count, 1 << 16))
                return taken
            }
            guard !chunk.isEmpty else { return !pendingLock.withLock { state.broken } }
            var ok = true
            chunk.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n > 0 {
                        offset += n
                        continue
                    }
                    if n < 0, errno == EINTR || errno == EAGAIN { continue }
                    ok = false
                    return
                }
            }
            if !ok { pendingLock.withLock { state.broken = true } }
            return ok
        }
    }

    public var isBroken: Bool { pendingLock.withLock { state.broken } }
}
