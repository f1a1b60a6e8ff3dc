#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Threading

/// One SRV record (RFC 2782).
public struct SRVRecord: Sendable, Equatable {
    public var priority: UInt16
    public var weight: UInt16
    public var port: UInt16
    public var target: String

    public init(priority: UInt16, weight: UInt16, port: UInt16, target: String) {
        self.priority = priority
        self.weight = weight
        self.port = port
        self.target = target
    }
}

public enum DNSError: Error, Sendable, Equatable, CustomStringConvertible {
    case noServer
    case timeout(server: String)
    case malformedResponse(String)
    case serverFailure(rcode: Int)

    public var description: String {
        switch self {
        case .noServer: "no DNS server is configured (/etc/resolv.conf has no nameserver)"
        case .timeout(let server): "the DNS server \(server) did not answer"
        case .malformedResponse(let why): "the DNS answer is malformed: \(why)"
        case .serverFailure(let rcode): "the DNS server answered with error code \(rcode)"
        }
    }
}

/// SRV lookups over UDP to one server: the system's first nameserver, or one given with
/// `--dns-server` (tests point it at a loopback server). Socket calls block, so they run on a
/// dedicated thread, each with a receive timeout.
public final class SRVResolver: Sendable {
    public let server: (host: String, port: UInt16)?
    private let worker = SerialWorker(name: "syncwizard-dns")
    private let timeoutSeconds: Double

    /// `server` like "127.0.0.1:5353" or "10.0.0.2"; nil means /etc/resolv.conf.
    public init(server: String? = nil, timeoutSeconds: Double = 2) {
        self.server = server.flatMap(Self.parseServer) ?? Self.systemServer()
        self.timeoutSeconds = timeoutSeconds
    }

    static func parseServer(_ text: String) -> (String, UInt16)? {
        let parts = text.split(separator: ":")
        guard let host = parts.first else { return nil }
        let port = parts.count > 1 ? UInt16(parts[1]) ?? 53 : 53
        return (String(host), port)
    }

    static func systemServer() -> (String, UInt16)? {
        guard let file = fopen("/etc/resolv.conf", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, 512, file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            if fields.count >= 2, fields[0] == "nameserver", !fields[1].contains(":") {
                return (String(fields[1]), 53)
            }
        }
        return nil
    }

    /// The SRV records of `name` in RFC 2782 order: ascending priority, and within one priority
    /// a weighted random order. An empty list when the name has none (NXDOMAIN or no answers).
    /// `deadline` (monotonic seconds, see `monotonicSeconds()`) bounds the whole lookup, the wait
    /// behind other lookups on the worker included: the caller's budget is never overrun.
    public func lookup(_ name: String, deadline: Double? = nil) async throws(DNSError) -> [SRVRecord] {
        guard let server else { throw .noServer }
        let perTry = timeoutSeconds
        let deadline = deadline ?? monotonicSeconds() + 2 * perTry
        let remaining = deadline - monotonicSeconds()
        guard remaining > 0 else { throw .timeout(server: server.host) }
        let outcome: Result<[SRVRecord], DNSError>? = await worker.run(timeout: remaining) {
            Self.query(name: name, server: server, timeoutSeconds: perTry, deadline: deadline)
        }
        switch outcome {
        case .success(let records)?: return Self.rfc2782Order(records)
        case .failure(let error)?: throw error
        case nil: throw .timeout(server: server.host)
        }
    }

    static func rfc2782Order(_ records: [SRVRecord], random: (Int) -> Int = { Int.random(in: 0...$0) }) -> [SRVRecord] {
        // "." as target means the service is decidedly not available at this name.
        let usable = records.filter { $0.target != "." && !$0.target.isEmpty }
        var ordered: [SRVRecord] = []
        for priority in Set(usable.map(\.priority)).sorted() {
            var group = usable.filter { $0.priority == priority }.sorted { $0.weight < $1.weight }
            while !group.isEmpty {
                let total = group.reduce(0) { $0 + Int($1.weight) }
                let pick = random(total)
                var running = 0
                var chosen = group.count - 1
                for (i, record) in group.enumerated() {
                    running += Int(record.weight)
                    if running >= pick { chosen = i; break }
                }
                ordered.append(group.remove(at: chosen))
            }
        }
        return ordered
    }

    static func query(name: String, server: (host: String, port: UInt16), timeoutSeconds: Double, deadline: Double) -> Result<[SRVRecord], DNSError> {
        let id = UInt16.random(in: 0...UInt16.max)
        guard let packet = DNSMessage.srvQuery(id: id, name: name) else { return .failure(.malformedResponse("invalid name")) }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return .failure(.timeout(server: server.host)) }
        defer { close(fd) }
        /// Each receive waits for the rest of this try, never past the deadline.
        func setReceiveTimeout(until end: Double) -> Bool {
            let wait = end - monotonicSeconds()
            guard wait > 0.001 else { return false }
            var tv = timeval(tv_sec: Int(wait), tv_usec: Int((wait - Double(Int(wait))) * 1_000_000))
            return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size)) == 0
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = server.port.bigEndian
        guard inet_pton(AF_INET, server.host, &address.sin_addr) == 1 else { return .failure(.noServer) }
        for _ in 0..<2 {
            let tryEnd = min(deadline, monotonicSeconds() + timeoutSeconds)
            guard tryEnd - monotonicSeconds() > 0.001 else { break }
            let sent = packet.withUnsafeBytes { raw in
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            guard sent == packet.count else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            while setReceiveTimeout(until: tryEnd) {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { break }
                let answer = Array(buffer[0..<n])
                // Ignore stray datagrams that are not the answer to this query.
                guard answer.count >= 2, UInt16(answer[0]) << 8 | UInt16(answer[1]) == id else { continue }
                return DNSMessage.parseSRVAnswer(answer)
            }
        }
        return .failure(.timeout(server: server.host))
    }
}

/// Just enough of RFC 1035 for one SRV question and its answers.
enum DNSMessage {
    static func srvQuery(id: UInt16, name: String) -> [UInt8]? {
        var out: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") {
            let bytes = Array(label.utf8)
            guard !bytes.isEmpty, bytes.count < 64 else { return nil }
            out.append(UInt8(bytes.count))
            out += bytes
        }
        out += [0, 0, 33, 0, 1]  // root, QTYPE SRV, QCLASS IN
        return out
    }

    static func parseSRVAnswer(_ message: [UInt8]) -> Result<[SRVRecord], DNSError> {
        guard message.count >= 12 else { return .failure(.malformedResponse("shorter than a header")) }
        let rcode = Int(message[3] & 0x0F)
        if rcode == 3 { return .success([]) }  // NXDOMAIN
        guard rcode == 0 else { return .failure(.serverFailure(rcode: rcode)) }
        let questions = Int(message[4]) << 8 | Int(message[5])
        let answers = Int(message[6]) << 8 | Int(message[7])
        var offset = 12
        do {
            for _ in 0..<questions {
                _ = try readName(message, &offset)
                offset += 4
            }
            var records: [SRVRecord] = []
            for _ in 0..<answers {
                _ = try readName(message, &offset)
                guard offset + 10 <= message.count else { throw DNSError.malformedResponse("truncated record") }
                let type = Int(message[offset]) << 8 | Int(message[offset + 1])
                let length = Int(message[offset + 8]) << 8 | Int(message[offset + 9])
                offset += 10
                guard offset + length <= message.count else { throw DNSError.malformedResponse("truncated record data") }
                if type == 33, length >= 7 {
                    var at = offset + 6
                    let target = try readName(message, &at)
                    records.append(SRVRecord(
                        priority: UInt16(message[offset]) << 8 | UInt16(message[offset + 1]),
                        weight: UInt16(message[offset + 2]) << 8 | UInt16(message[offset + 3]),
                        port: UInt16(message[offset + 4]) << 8 | UInt16(message[offset + 5]),
                        target: target))
                }
                offset += length
            }
            return .success(records)
        } catch let error as DNSError {
            return .failure(error)
        } catch {
            return .failure(.malformedResponse("\(error)"))
        }
    }

    /// A possibly compressed name; pointers may only go backwards, so loops are impossible.
    static func readName(_ message: [UInt8], _ offset: inout Int) throws -> String {
        var labels: [String] = []
        var position = offset
        var jumped = false
        var steps = 0
        while true {
            steps += 1
            guard position < message.count, steps < 128 else { throw DNSError.malformedResponse("bad name") }
            let length = Int(message[position])
            if length == 0 {
                if !jumped { offset = position + 1 }
                break
            }
            if length & 0xC0 == 0xC0 {
                guard position + 1 < message.count else { throw DNSError.malformedResponse("bad pointer") }
                let pointer = (length & 0x3F) << 8 | Int(message[position + 1])
                guard pointer < position else { throw DNSError.malformedResponse("forward pointer") }
                if !jumped { offset = position + 2 }
                jumped = true
                position = pointer
                continue
            }
            guard position + 1 + length <= message.count else { throw DNSError.malformedResponse("bad label") }
            labels.append(String(decoding: message[(position + 1)...(position + length)], as: UTF8.self))
            position += 1 + length
        }
        return labels.isEmpty ? "." : labels.joined(separator: ".")
    }
}
