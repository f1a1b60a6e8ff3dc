#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Starts a detached pthread for blocking work (read(2) loops, libsecret, libcurl) so that
/// Swift's cooperative pool and GCD never block on it.
public func startDedicatedThread(name: String, _ body: @escaping @Sendable () -> Void) {
    final class Box: Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
    let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(
        &thread, nil,
        { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box)
    precondition(result == 0, "pthread_create failed: \(result)")
    pthread_detach(thread)
}

/// One dedicated thread that runs submitted jobs in order. Async callers await the result
/// without blocking the pool; a job that hangs delays only later jobs of this worker.
public final class SerialWorker: Sendable {
    private let lock = ConditionLock()
    private let queue = JobQueue()

    // @unchecked: only touched under `lock`.
    private final class JobQueue: @unchecked Sendable {
        var jobs: [@Sendable () -> Void] = []
    }

    public init(name: String) {
        let lock = self.lock
        let queue = self.queue
        startDedicatedThread(name: name) {
            while true {
                let job: @Sendable () -> Void = lock.withLock {
                    while queue.jobs.isEmpty { lock.wait() }
                    return queue.jobs.removeFirst()
                }
                job()
            }
        }
    }

    public func submit(_ job: @escaping @Sendable () -> Void) {
        lock.withLock { queue.jobs.append(job) }
        lock.signal()
    }

    /// Runs `body` on the worker thread. With `timeout`, the caller gets `onTimeout()` once it
    /// passes, even though the job itself may still be stuck in a C call.
    public func run<T: Sendable>(
        timeout: Double? = nil, onTimeout: @escaping @Sendable () -> T? = { nil },
        _ body: @escaping @Sendable () -> T
    ) async -> T? {
        let once = ResumeOnce<T?>()
        return await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            once.set(continuation)
            submit { once.resume(body()) }
            if let timeout {
                startTimer(seconds: timeout) { once.resume(onTimeout()) }
            }
        }
    }
}

/// Runs `body` on a thread of its own, so one blocking C call never delays another caller
/// (a lookup each, say). With `timeout`, the caller gets `onTimeout()` once it passes, even
/// though the thread may still be stuck in the call; the thread ends when the call returns.
public func runOnOwnThread<T: Sendable>(
    name: String, timeout: Double? = nil, onTimeout: @escaping @Sendable () -> T? = { nil },
    _ body: @escaping @Sendable () -> T
) async -> T? {
    let once = ResumeOnce<T?>()
    return await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
        once.set(continuation)
        startDedicatedThread(name: name) { once.resume(body()) }
        if let timeout {
            startTimer(seconds: timeout) { once.resume(onTimeout()) }
        }
    }
}

/// Resumes a continuation at most once; later resumes are ignored.
final class ResumeOnce<T: Sendable>: Sendable {
    private let state = MutexBox<(CheckedContinuation<T, Never>?, Bool)>((nil, false))

    func set(_ continuation: CheckedContinuation<T, Never>) {
        state.withLock { $0.0 = continuation }
    }

    func resume(_ value: T) {
        let continuation: CheckedContinuation<T, Never>? = state.withLock { s in
            guard !s.1, let c = s.0 else { return nil }
            s.1 = true
            return c
        }
        continuation?.resume(returning: value)
    }
}
