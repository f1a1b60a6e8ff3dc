import RPCCore
import Threading

/// One running request.
final class InFlightEntry: Sendable {
    let id: JSONValue
    let sink: ReplySink
    private let taskBox = MutexBox<Task<Void, Never>?>(nil)

    init(id: JSONValue, sink: ReplySink) {
        self.id = id
        self.sink = sink
    }

    var task: Task<Void, Never>? {
        get { taskBox.withLock { $0 } }
        set { taskBox.withLock { $0 = newValue } }
    }
}

/// Running requests by id, with a cap: `admit` blocks the (dedicated) reader thread while the
/// cap is reached, which stops reading stdin and so pushes back on the client.
/// Exactly one reply per request: whoever removes the entry first (completion, cancellation,
/// or the drain at exit) answers it.
final class InFlightTable: Sendable {
    private let lock = ConditionLock()
    private let storage = Storage()

    // @unchecked: only touched under `lock`.
    private final class Storage: @unchecked Sendable {
        var entries: [ObjectIdentifier: InFlightEntry] = [:]
        /// Entries whose reply is being sent; they still count until it is queued.
        var claimed: Set<ObjectIdentifier> = []
        var limit = 256
    }

    var limit: Int {
        get { lock.withLock { storage.limit } }
        set { lock.withLock { storage.limit = max(1, newValue) } }
    }

    func admit(id: JSONValue, sink: ReplySink) -> InFlightEntry {
        let entry = InFlightEntry(id: id, sink: sink)
        lock.withLock {
            while storage.entries.count >= storage.limit { lock.wait() }
            storage.entries[ObjectIdentifier(entry)] = entry
        }
        return entry
    }

    /// Sends the reply of a finished request unless cancellation already answered it. The entry
    /// stays counted until the reply is queued, so the drain at exit cannot miss it.
    func complete(_ entry: InFlightEntry, deliver: () -> Void) {
        let key = ObjectIdentifier(entry)
        let mine = lock.withLock { storage.entries[key] != nil && storage.claimed.insert(key).inserted }
        if mine { deliver() }
        lock.withLock {
            storage.entries[key] = nil
            storage.claimed.remove(key)
        }
        lock.broadcast()
    }

    /// Cancels and removes the requests with this id; the caller answers them.
    func cancel(id: JSONValue) -> [InFlightEntry] {
        let matched = lock.withLock {
            let matched = storage.entries.values.filter { $0.id == id && !storage.claimed.contains(ObjectIdentifier($0)) }
            for entry in matched { storage.entries[ObjectIdentifier(entry)] = nil }
            return matched
        }
        lock.broadcast()
        for entry in matched { entry.task?.cancel() }
        return matched
    }

    /// Signals cancellation to every running task; they still answer for themselves.
    func cancelAll() {
        let all = lock.withLock { Array(storage.entries.values) }
        for entry in all { entry.task?.cancel() }
    }

    func waitUntilEmpty(seconds: Double) -> Bool {
        let deadline = monotonicSeconds() + seconds
        return lock.withLock {
            while !storage.entries.isEmpty {
                if monotonicSeconds() >= deadline { return false }
                lock.wait(untilMonotonic: deadline)
            }
            return true
        }
    }

    func abandonAll() -> [InFlightEntry] {
        lock.withLock {
            let unclaimed = storage.entries.filter { !storage.claimed.contains($0.key) }
            for key in unclaimed.keys { storage.entries[key] = nil }
            return Array(unclaimed.values)
        }
    }
}
