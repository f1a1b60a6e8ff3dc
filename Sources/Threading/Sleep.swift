/// `Task.sleep` for a duration in seconds that may come from anywhere (a server's interval, a
/// client's timeout): NaN and negatives sleep not at all and huge values are capped, because
/// `UInt64(Double)` traps on anything it cannot represent.
public func sleep(seconds: Double) async throws {
    try await Task.sleep(nanoseconds: nanoseconds(seconds))
}

/// Seconds as nanoseconds, saturating: at most about 292 years, never a trap.
public func nanoseconds(_ seconds: Double) -> UInt64 {
    guard seconds > 0 else { return 0 } // also NaN
    let ns = seconds * 1e9
    return ns >= 1.8e19 ? 18_000_000_000_000_000_000 : UInt64(ns)
}
