#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs `action` after `seconds` on a shared timer thread (never the cooperative pool).
public func startTimer(seconds: Double, _ action: @escaping @Sendable () -> Void) {
    TimerThread.shared.schedule(at: monotonicSeconds() + seconds, action)
}

final class TimerThread: Sendable {
    static let shared = TimerThread()
    private let lock = ConditionLock()
    // @unchecked: only touched under `lock`.
    private final class Timers: @unchecked Sendable {
        var entries: [(deadline: Double, action: @Sendable () -> Void)] = []
    }
    private let timers = Timers()

    private init() {
        let lock = self.lock
        let timers = self.timers
        startDedicatedThread(name: "syncwizard-timer") {
            while true {
                let due: [@Sendable () -> Void] = lock.withLock {
                    while true {
                        let now = monotonicSeconds()
                        let ready = timers.entries.filter { $0.deadline <= now }
                        if !ready.isEmpty {
                            timers.entries.removeAll { $0.deadline <= now }
                            return ready.map(\.action)
                        }
                        if let next = timers.entries.map(\.deadline).min() {
                            lock.wait(untilMonotonic: next)
                        } else {
                            lock.wait()
                        }
                    }
                }
                for action in due { action() }
            }
        }
    }

    func schedule(at deadline: Double, _ action: @escaping @Sendable () -> Void) {
        lock.withLock { timers.entries.append((deadline, action)) }
        lock.signal()
    }
}
