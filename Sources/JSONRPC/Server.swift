import Logging
import RPCCore
import Threading

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Serves JSON-RPC 2.0 on a byte stream (stdin) with replies on an `OutputChannel` (stdout).
///
/// One dedicated thread reads and frames input; quick methods are answered right there, the
/// rest run as tasks so a slow request never delays a fast one. `$/cancelRequest` overtakes
/// everything: it is handled on the reader thread the moment it arrives.
public final class JSONRPCServer: Sendable {
    public struct Configuration: Sendable {
        public var maximumMessageBytes = 4 * 1024 * 1024
        /// Requests running at once before the reader stops reading (backpressure).
        public var maximumInFlight = 256
        /// On EOF, how long running requests may finish on their own before they are cancelled:
        /// `printf '...' | syncwizard` must not lose a profile write that takes milliseconds,
        /// while a sign-in or a network probe is cut short.
        public var eofGraceSeconds = 1.0
        /// After cancelling, how long work may take to answer before it is answered for.
        public var drainSeconds = 5.0
        public init() {}
    }

    private let table: MethodTable
    private let configuration: Configuration
    private let output: OutputChannel
    private let trace: TraceFile?
    private let logger: Logger
    private let inFlight = InFlightTable()
    private let lifecycle = MutexBox(Lifecycle())
    /// Run when input ends or `exit` arrives (close sign-in listeners, flush stores).
    private let closeHooks = MutexBox<[@Sendable () -> Void]>([])

    struct Lifecycle {
        var shutdownRequested = false
        var exitRequested = false
    }

    public init(
        table: MethodTable, output: OutputChannel, trace: TraceFile? = nil,
        configuration: Configuration = Configuration(), logger: Logger
    ) {
        self.table = table
        self.output = output
        self.trace = trace
        self.configuration = configuration
        self.logger = logger
        self.inFlight.limit = configuration.maximumInFlight
    }

    public func onClose(_ hook: @escaping @Sendable () -> Void) {
        closeHooks.withLock { $0.append(hook) }
    }

    /// Reads `inputFD` until EOF or `exit`, then cancels what is still running, answers every
    /// request that was read, flushes, and returns the exit status.
    public func run(inputFD: Int32) -> Int32 {
        var parser = FrameParser(maximumMessageBytes: configuration.maximumMessageBytes)
        let chunkSize = 1 << 16
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { chunk.deallocate() }
        var events: [FrameEvent] = []

        while true {
            let n = read(inputFD, chunk.baseAddress, chunkSize)
            if n < 0, errno == EINTR { continue }
            if n <= 0 {
                if n < 0 { logger.warning("Reading stdin failed: \(String(cString: strerror(errno))); treating it as end of input.") }
                handle(parser.finish())
                break
            }
            events.removeAll(keepingCapacity: true)
            parser.feed(UnsafeRawBufferPointer(rebasing: chunk[0..<n]), into: &events)
            handle(events)
            output.flush()
            if lifecycle.withLock({ $0.exitRequested }) || output.isBroken { break }
        }
        logger.debug("Input ended; finishing in-flight requests.")
        finishInFlightWork()
        return 0
    }

    private func finishInFlightWork() {
        output.flush()
        if inFlight.waitUntilEmpty(seconds: configuration.eofGraceSeconds) {
            for hook in closeHooks.withLock({ $0 }) { hook() }
            output.flush()
            return
        }
        for hook in closeHooks.withLock({ $0 }) { hook() }
        inFlight.cancelAll()
        if !inFlight.waitUntilEmpty(seconds: configuration.drainSeconds) {
            logger.warning("Some requests did not end within \(configuration.drainSeconds) s of being cancelled; answering them as cancelled.")
            for entry in inFlight.abandonAll() {
                entry.sink.deliver(ResponseEncoder.error(id: entry.id, .cancelled))
            }
            // Replies being handed over right now (claimed before the abandon) still land.
            _ = inFlight.waitUntilEmpty(seconds: 1)
        }
        output.flush()
    }

    // MARK: - Messages

    private func handle(_ events: [FrameEvent]) {
        for event in events {
            // Nothing after `exit` is read, even when it came in the same chunk.
            if lifecycle.withLock({ $0.exitRequested }) { return }
            switch event {
            case .message(let bytes, let framing):
                output.noteIncoming(framing)
                trace?.record(direction: .incoming, bytes)
                handleMessage(bytes, framing: framing)
            case .tooLarge(let framing, let declared):
                output.noteIncoming(framing)
                let limit = configuration.maximumMessageBytes
                var error = RPCError(
                    .messageTooLarge,
                    "The message is larger than the limit of \(limit) bytes and was skipped.",
                    hint: "Start syncwizard with --max-message-bytes to raise the limit.")
                error = error.with("limitBytes", .int(limit))
                if let declared { error = error.with("declaredBytes", .int(declared)) }
                reply(ResponseEncoder.error(id: .null, error), framing: framing)
            case .badHeader(let problem):
                output.noteIncoming(.contentLength)
                reply(
                    ResponseEncoder.error(
                        id: .null,
                        RPCError(
                            .invalidRequest, "Unusable message header: \(problem)",
                            hint: "Send 'Content-Length: N', a blank line (CRLF CRLF), then N bytes of JSON.")),
                    framing: .contentLength)
            case .truncated(let framing):
                reply(
                    ResponseEncoder.error(
                        id: .null, RPCError(.parseError, "Input ended before the message was complete (fewer bytes than its Content-Length).")),
                    framing: framing)
            }
        }
    }

    private func reply(_ body: [UInt8], framing: Framing) {
        output.send(body, framing: framing, wakeWriter: false)
    }

    private func handleMessage(_ bytes: [UInt8], framing: Framing) {
        switch MessageDecoder.decode(bytes) {
        case .unanswerable(let error):
            reply(ResponseEncoder.error(id: .null, error), framing: framing)
        case .single(let message):
            handle(message, sink: ReplySink(output: output, framing: framing, batch: nil))
        case .batch(let messages):
            let answered = messages.filter { if case .notification = $0 { return false } else { return true } }.count
            let batch = answered > 0 ? BatchCollector(expected: answered) : nil
            let sink = ReplySink(output: output, framing: framing, batch: batch)
            for message in messages { handle(message, sink: sink) }
        }
    }

    private func handle(_ message: IncomingMessage, sink: ReplySink) {
        switch message {
        case .invalid(let id, let error):
            sink.deliver(ResponseEncoder.error(id: id, error), fromReader: true)
        case .notification(let method, let params):
            handleNotification(method, params)
        case .request(let id, let method, let params):
            handleRequest(id: id, method: method, params: params, sink: sink)
        }
    }

    private func handleNotification(_ method: String, _ params: JSONValue?) {
        switch method {
        case CancelRequest.name:
            guard let decoded = try? CancelRequest.Params.decode(params) else {
                logger.notice("Ignoring a $/cancelRequest without a usable id.")
                return
            }
            for entry in inFlight.cancel(id: decoded.id) {
                entry.sink.deliver(ResponseEncoder.error(id: entry.id, .cancelled), fromReader: true)
            }
        case Exit.name:
            lifecycle.withLock { $0.exitRequested = true }
        default:
            if let handler = table.notifications[method] {
                handler(params)
            } else {
                logger.debug("Ignoring the unknown notification '\(method.clipped(toBytes: 64))'.")
            }
        }
    }

    private func handleRequest(id: JSONValue, method: String, params: JSONValue?, sink: ReplySink) {
        if method == Shutdown.name {
            lifecycle.withLock { $0.shutdownRequested = true }
            sink.deliver(ResponseEncoder.result(id: id, .null), fromReader: true)
            return
        }
        if lifecycle.withLock({ $0.shutdownRequested }) {
            sink.deliver(
                ResponseEncoder.error(
                    id: id,
                    RPCError(
                        .serverShuttingDown, "The server is shutting down and takes no new requests.",
                        hint: "Send the 'exit' notification, or close stdin.")), fromReader: true)
            return
        }
        guard let handler = table.requests[method] else {
            sink.deliver(ResponseEncoder.error(id: id, .methodNotFound(method.clipped(toBytes: 128))), fromReader: true)
            return
        }
        switch handler {
        case .inline(let body):
            do {
                sink.deliver(ResponseEncoder.result(id: id, try body(params)), fromReader: true)
            } catch {
                sink.deliver(ResponseEncoder.error(id: id, error), fromReader: true)
            }
        case .async(let body):
            // Waits here (on the reader thread) when too many requests are running.
            let entry = inFlight.admit(id: id, sink: sink)
            let context = RequestContext(id: id, output: output)
            let logger = self.logger
            let inFlight = self.inFlight
            entry.task = Task {
                let response: [UInt8]
                do {
                    response = ResponseEncoder.result(id: id, try await body(params, context))
                } catch let error as RPCError {
                    response = ResponseEncoder.error(id: id, error)
                } catch is CancellationError {
                    response = ResponseEncoder.error(id: id, .cancelled)
                } catch {
                    logger.error("Request '\(method)' failed unexpectedly: \(Redactor.shared.redact(String(describing: error)))")
                    response = ResponseEncoder.error(id: id, .internalError("The request failed unexpectedly; the log on stderr has details."))
                }
                inFlight.complete(entry) { entry.sink.deliver(response) }
            }
        }
    }
}

/// Where a reply goes: straight to the output, or into the batch it belongs to.
final class ReplySink: Sendable {
    let output: OutputChannel
    let framing: Framing
    let batch: BatchCollector?

    init(output: OutputChannel, framing: Framing, batch: BatchCollector?) {
        self.output = output
        self.framing = framing
        self.batch = batch
    }

    func deliver(_ response: [UInt8], fromReader: Bool = false) {
        if let batch {
            guard let array = batch.add(response) else { return }
            output.send(array, framing: framing, wakeWriter: !fromReader)
        } else {
            output.send(response, framing: framing, wakeWriter: !fromReader)
        }
    }
}

/// Gathers the replies of one batch and releases them as one array once all are in.
final class BatchCollector: Sendable {
    private let state: MutexBox<(remaining: Int, parts: [[UInt8]])>

    init(expected: Int) { state = MutexBox((expected, [])) }

    func add(_ response: [UInt8]) -> [UInt8]? {
        state.withLock { s -> [UInt8]? in
            s.parts.append(response)
            s.remaining -= 1
            guard s.remaining == 0 else { return nil }
            var array: [UInt8] = [UInt8(ascii: "[")]
            for (i, part) in s.parts.enumerated() {
                if i > 0 { array.append(UInt8(ascii: ",")) }
                array.append(contentsOf: part)
            }
            array.append(UInt8(ascii: "]"))
            return array
        }
    }
}
