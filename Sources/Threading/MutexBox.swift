import Synchronization

/// A `Mutex` in a class, so it can be shared by reference between threads and tasks.
public final class MutexBox<Value: ~Copyable>: Sendable {
    private let mutex: Mutex<Value>

    public init(_ value: consuming sending Value) { mutex = Mutex(value) }

    public func withLock<T: ~Copyable, E: Error>(_ body: (inout sending Value) throws(E) -> sending T) throws(E) -> T {
        try mutex.withLock(body)
    }
}
