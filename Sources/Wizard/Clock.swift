#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Timestamps and ids without Foundation (start-up time matters for a process spawned per use).
enum Clock {
    /// Seconds since 1970 (for token lifetimes).
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// RFC 3339 UTC for a moment given in seconds since 1970, e.g. 2026-11-25T09:30:00Z.
    @Sendable static func iso8601(_ seconds: Double) -> String {
        format(seconds, milliseconds: false)
    }

    /// Now, in RFC 3339 UTC with milliseconds, e.g. 2026-11-25T09:30:00.123Z.
    static func nowISO8601() -> String {
        format(now(), milliseconds: true)
    }

    static func format(_ seconds: Double, milliseconds: Bool) -> String {
        // Years 1970 to 9999: a moment computed from a server's number never traps Int().
        let seconds = seconds.isFinite ? min(max(seconds, 0), 253_402_300_799) : 0
        var whole = Int(seconds.rounded(.down))
        var parts = tm()
        gmtime_r(&whole, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let fraction = milliseconds ? "." + pad(Int32((seconds - Double(whole)) * 1000), 3) : ""
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))\(fraction)Z"
    }
}

enum IDGenerator {
    /// A random (version 4) UUID in lowercase.
    static func uuid() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = bytes.map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }
        return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-"
            + hex[8..<10].joined() + "-" + hex[10..<16].joined()
    }
}
