import CResolvShim
import Threading

#if canImport(Glibc)
    import Glibc
#endif

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
    case invalidServer(String)
    case invalidName(String)
    case timeout(server: String)
    case unreachable(server: String, reason: String)
    case malformedResponse(String)
    case serverFailure(rcode: Int)
    case invalidTarget(String)

    public var description: String {
        switch self {
        case .noServer: "no DNS server is configured (/etc/resolv.conf cannot be read or names none)"
        case .invalidServer(let text): "'\(text)' is not a DNS server: give IPv4, IPv4:PORT, IPv6 or [IPv6]:PORT with a port from 1 to 65535"
        case .invalidName(let name): "'\(name)' is not a DNS name that can be looked up"
        case .timeout(let server): "the DNS server \(server) did not answer"
        case .unreachable(let server, let reason): "the DNS server \(server) cannot be reached: \(reason)"
        case .malformedResponse(let why): "the DNS answer is malformed: \(why)"
        case .serverFailure(let rcode): "the DNS server answered with error code \(rcode)"
        case .invalidTarget(let target): "the SRV record names '\(target)', which is not a host name"
        }
    }
}

/// A DNS server given by address, as `--dns-server` takes it.
public struct DNSServerAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Family: Sendable { case ipv4, ipv6 }
    public let family: Family
    /// The numeric address as written, without brackets.
    public let address: String
    public let port: UInt16

    public var description: String { family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)" }

    /// Calls `body` with this address as a sockaddr_in or sockaddr_in6.
    func withSocketAddress<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        switch family {
        case .ipv4:
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = port.bigEndian
            _ = inet_pton(AF_INET, address, &socketAddress.sin_addr)
            return withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .ipv6:
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_port = port.bigEndian
            _ = inet_pton(AF_INET6, address, &socketAddress.sin6_addr)
            return withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }
}

/// SRV lookups through glibc's stub resolver: `res_nmkquery` builds the question and
/// `res_nsend` asks every nameserver of /etc/resolv.conf (IPv4 and IPv6, with its options), or
/// the one `--dns-server` names, over a connected UDP socket that only accepts an answer from
/// that server with the query's id and question, retrying over TCP when the answer is
/// truncated. `ns_initparse` / `ns_parserr` / `dn_expand` read the answer: names come back
/// escaped (`\.`, `\047`) and a target that is not a host name is never returned.
///
/// Each lookup has a private `res_state` and a thread of its own, so a slow server delays only
/// its own lookup and never Swift's cooperative pool.
public final class SRVResolver: Sendable {
    /// The server given to `init`; nil means /etc/resolv.conf's (read again by each lookup).
    public let server: DNSServerAddress?
    /// A server text that `parseServer` rejects: every lookup fails with `.invalidServer`.
    private let rejectedServer: String?
    private let timeoutSeconds: Double

    /// `server` as `parseServer` takes it; nil means /etc/resolv.conf. `timeoutSeconds` is how
    /// long one try waits for a server (whole seconds for glibc), within each lookup's deadline.
    public init(server: String? = nil, timeoutSeconds: Double = 2) {
        let parsed = server.flatMap(Self.parseServer)
        self.server = parsed
        self.rejectedServer = parsed == nil ? server : nil
        self.timeoutSeconds = timeoutSeconds
    }

    /// `IPv4`, `IPv4:PORT`, `[IPv6]:PORT`, `[IPv6]` or a bare `IPv6` (whose last group is never
    /// taken for a port); the port is 1-65535 in decimal digits and defaults to 53. Numeric
    /// addresses only (no names, no IPv6 zone); nil for anything else.
    public static func parseServer(_ text: String) -> DNSServerAddress? {
        var host = Substring(text)
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard host.contains(":"), rest.isEmpty || rest.first == ":" else { return nil }
            if !rest.isEmpty { portText = rest.dropFirst() }
        } else if text.utf8.count(where: { $0 == UInt8(ascii: ":") }) == 1, let colon = text.firstIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        var port: UInt16 = 53
        if let portText {
            guard (1...5).contains(portText.utf8.count), portText.utf8.allSatisfy({ (48...57).contains($0) }),
                let number = Int(portText), (1...65535).contains(number)
            else { return nil }
            port = UInt16(number)
        }
        if host.contains(":") {
            var parsed = in6_addr()
            guard inet_pton(AF_INET6, String(host), &parsed) == 1 else { return nil }
            return DNSServerAddress(family: .ipv6, address: String(host), port: port)
        }
        var parsed = in_addr()
        guard inet_pton(AF_INET, String(host), &parsed) == 1 else { return nil }
        return DNSServerAddress(family: .ipv4, address: String(host), port: port)
    }

    /// The SRV records of `name` in RFC 2782 order: ascending priority, and within one priority
    /// a weighted random order. An empty list when the name has none (NXDOMAIN or no answers).
    /// `deadline` (monotonic seconds, see `monotonicSeconds()`) bounds the whole lookup: when it
    /// passes, the lookup ends with `.timeout` even if glibc is still waiting on its thread.
    public func lookup(_ name: String, deadline: Double? = nil) async throws(DNSError) -> [SRVRecord] {
        Self.rfc2782Order(
            try await resolve(name, deadline: deadline) { server, perTry, deadline, servers in
                Self.query(name: name, type: ns_t_srv, server: server, perTry: perTry, deadline: deadline, servers: servers, parse: Self.parse)
            })
    }

    /// Runs `work` (blocking in glibc) on a thread of its own within the deadline.
    private func resolve<T: Sendable>(
        _ name: String, deadline: Double?,
        _ work: @escaping @Sendable (DNSServerAddress?, Double, Double, MutexBox<String>) -> Result<T, DNSError>
    ) async throws(DNSError) -> T {
        if let rejectedServer { throw .invalidServer(rejectedServer) }
        guard Self.isQueryName(name) else { throw .invalidName(name) }
        let deadline = deadline ?? monotonicSeconds() + 2 * timeoutSeconds
        let servers = MutexBox(server?.description ?? "of /etc/resolv.conf")
        let remaining = deadline - monotonicSeconds()
        guard remaining > 0 else { throw .timeout(server: servers.withLock { $0 }) }
        let (server, perTry) = (self.server, timeoutSeconds)
        let outcome: Result<T, DNSError>? = await runOnOwnThread(
            name: "syncwizard-dns", timeout: remaining,
            onTimeout: { .failure(.timeout(server: servers.withLock { $0 })) },
            { work(server, perTry, deadline, servers) }
        )
        switch outcome {
        case .success(let value)?: return value
        case .failure(let error)?: throw error
        case nil: throw .timeout(server: servers.withLock { $0 })
        }
    }

    /// The IPv4 (A) and IPv6 (AAAA) addresses of `name`, as text, through the same resolver and
    /// server as `lookup` (both questions on one thread of its own, within `deadline`). An empty
    /// list when the name has none (NXDOMAIN or no records); CNAMEs are followed in the answer.
    public func addresses(of name: String, deadline: Double? = nil) async throws(DNSError) -> [String] {
        try await resolve(name, deadline: deadline) { server, perTry, deadline, servers in
            var all: [String] = []
            for type in [ns_t_a, ns_t_aaaa] {
                let parse: (UnsafeBufferPointer<UInt8>, String) -> Result<[String], DNSError> = { Self.parseAddresses($0, name: $1, type: type) }
                switch Self.query(name: name, type: type, server: server, perTry: perTry, deadline: deadline, servers: servers, parse: parse) {
                case .success(let found): all += found
                case .failure(let error): return .failure(error)
                }
            }
            return .success(all)
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
                    if running >= pick {
                        chosen = i
                        break
                    }
                }
                ordered.append(group.remove(at: chosen))
            }
        }
        return ordered
    }

    /// One lookup on its own thread, blocking in res_nsend. `servers` learns the servers' text
    /// for the caller's timeout message.
    static func query<T>(
        name: String, type: ns_type, server: DNSServerAddress?, perTry: Double, deadline: Double,
        servers: MutexBox<String>, parse: (UnsafeBufferPointer<UInt8>, String) -> Result<T, DNSError>
    ) -> Result<T, DNSError> {
        let state = UnsafeMutablePointer<__res_state>.allocate(capacity: 1)
        state.initialize(to: __res_state())
        defer { state.deallocate() }
        guard sw_res_ninit(state) == 0 else { return .failure(.noServer) }
        defer { sw_res_nclose(state) }
        if let server, server.withSocketAddress({ sw_res_use_server(state, $0, $1) }) != 0 {
            return .failure(.invalidServer(server.description))
        }
        let count = Int(state.pointee.nscount)
        guard count > 0 else { return .failure(.noServer) }
        let described = (0..<count).map { index in
            var text = [CChar](repeating: 0, count: 64)
            return sw_res_server_text(state, Int32(index), &text, text.count) == 0 ? text.decodedCString : "?"
        }.joined(separator: ", ")
        servers.withLock { $0 = described }
        tune(state, remaining: deadline - monotonicSeconds(), perTry: perTry)

        var question = [UInt8](repeating: 0, count: Int(NS_PACKETSZ))
        let questionLength = res_nmkquery(
            state, Int32(ns_o_query.rawValue), name, Int32(ns_c_in.rawValue), Int32(type.rawValue),
            nil, 0, nil, &question, Int32(question.count))
        guard questionLength > 0 else { return .failure(.invalidName(name)) }
        var answer = [UInt8](repeating: 0, count: Int(NS_MAXMSG))
        errno = 0
        let answerLength = res_nsend(state, question, questionLength, &answer, Int32(answer.count))
        guard answerLength > 0 else {
            let code = errno
            if code == ETIMEDOUT || code == 0 { return .failure(.timeout(server: described)) }
            return .failure(.unreachable(server: described, reason: String(cString: strerror(code))))
        }
        return answer.withUnsafeBufferPointer { parse(UnsafeBufferPointer(rebasing: $0[..<Int(answerLength)]), name) }
    }

    /// glibc waits `retrans` whole seconds for the first server of a round (later ones get a
    /// share of two and four times that) over `retry` rounds. Both come from the time left, so
    /// glibc gives up about when the deadline passes; `lookup`'s timer covers the rounding up
    /// to one second. A SERVFAIL, REFUSED or NOTIMP answer is returned rather than skipped
    /// (glibc does so when `pfcode` is set), so it is reported as such.
    static func tune(_ state: res_state, remaining: Double, perTry: Double) {
        let servers = Double(max(1, state.pointee.nscount))
        let rounds = remaining >= 2 * servers * perTry ? 2 : 1
        let wait = min(perTry, remaining / (servers * Double(rounds)))
        state.pointee.retrans = Int32(max(1, wait.rounded(.down)))
        state.pointee.retry = Int32(rounds)
        state.pointee.options &= ~UInt(RES_IGNTC)
        state.pointee.pfcode = UInt(RES_PRF_STATS)
    }

    /// The SRV records of a response to our question about `name`.
    static func parse(_ answer: UnsafeBufferPointer<UInt8>, name: String) -> Result<[SRVRecord], DNSError> {
        var records: [SRVRecord] = []
        var rejected: [String] = []
        let walked = walkAnswers(answer, name: name, type: ns_t_srv) { message, data, index in
            guard data.count >= 7, let target = expandName(message, data, at: 6) else {
                return .malformedResponse("SRV record \(index + 1) does not parse")
            }
            guard target == "." || isHostName(target) else {
                rejected.append(target)
                return nil
            }
            func number(_ at: Int) -> UInt16 { UInt16(data[at]) << 8 | UInt16(data[at + 1]) }
            records.append(SRVRecord(priority: number(0), weight: number(2), port: number(4), target: target))
            return nil
        }
        if let walked { return .failure(walked) }
        if records.isEmpty, let first = rejected.first { return .failure(.invalidTarget(first)) }
        return .success(records)
    }

    /// The A or AAAA records of a response to our question about `name`, as text.
    static func parseAddresses(_ answer: UnsafeBufferPointer<UInt8>, name: String, type: ns_type) -> Result<[String], DNSError> {
        var addresses: [String] = []
        let (family, length) = type == ns_t_a ? (AF_INET, 4) : (AF_INET6, 16)
        let walked = walkAnswers(answer, name: name, type: type) { _, data, index in
            guard data.count == length, let start = data.baseAddress else { return .malformedResponse("address record \(index + 1) has the wrong length") }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(family, start, &text, socklen_t(text.count)) != nil else { return .malformedResponse("address record \(index + 1) does not parse") }
            addresses.append(text.decodedCString)
            return nil
        }
        if let walked { return .failure(walked) }
        return .success(addresses)
    }

    /// Checks that `answer` answers our question (`name`, `type`, class IN) and calls `each`
    /// with every answer record of that type owned by `name` or a CNAME target it leads to.
    /// NXDOMAIN is no records; another rcode is `.serverFailure`; `each` may end the walk with an error.
    static func walkAnswers(
        _ answer: UnsafeBufferPointer<UInt8>, name: String, type: ns_type,
        _ each: (ns_msg, UnsafeBufferPointer<UInt8>, Int32) -> DNSError?
    ) -> DNSError? {
        var message = ns_msg()
        guard ns_initparse(answer.baseAddress, Int32(answer.count), &message) == 0 else {
            return .malformedResponse("its sections do not fit the message")
        }
        let parsed = message
        func flag(_ which: ns_flag) -> Int { Int(ns_msg_getflag(parsed, Int32(which.rawValue))) }
        guard flag(ns_f_qr) == 1, flag(ns_f_opcode) == Int(ns_o_query.rawValue) else {
            return .malformedResponse("it is not a response to a query")
        }
        guard flag(ns_f_tc) == 0 else { return .malformedResponse("it is truncated, over TCP too") }
        var record = ns_rr()
        guard sw_ns_msg_count(&message, ns_s_qd) == 1, ns_parserr(&message, ns_s_qd, 0, &record) == 0,
            record.type == type.rawValue, record.rr_class == ns_c_in.rawValue, sameName(ownerName(&record), name)
        else {
            return .malformedResponse("its question is not the one asked")
        }
        let rcode = flag(ns_f_rcode)
        if rcode == Int(ns_r_nxdomain.rawValue) { return nil }
        guard rcode == Int(ns_r_noerror.rawValue) else { return .serverFailure(rcode: rcode) }

        var owners = [name] // the name asked and the CNAME targets it leads to
        for index in 0..<sw_ns_msg_count(&message, ns_s_an) {
            guard ns_parserr(&message, ns_s_an, index, &record) == 0 else {
                return .malformedResponse("answer record \(index + 1) does not parse")
            }
            let owner = ownerName(&record)
            guard record.rr_class == ns_c_in.rawValue, owners.contains(where: { sameName($0, owner) }) else { continue }
            let data = UnsafeBufferPointer(start: record.rdata, count: Int(record.rdlength))
            if record.type == ns_t_cname.rawValue {
                guard let alias = expandName(message, data, at: 0) else { return .malformedResponse("a CNAME target does not parse") }
                owners.append(alias)
                continue
            }
            guard record.type == type.rawValue else { continue }
            if let error = each(message, data, index) { return error }
        }
        return nil
    }

    /// The name at `offset` of a record's data, which must end exactly where the data does; as
    /// dn_expand writes it: special bytes escaped, no final dot, "." for the root.
    static func expandName(_ message: ns_msg, _ data: UnsafeBufferPointer<UInt8>, at offset: Int) -> String? {
        guard let start = data.baseAddress, offset < data.count else { return nil }
        var text = [CChar](repeating: 0, count: Int(NS_MAXDNAME))
        let used = dn_expand(message._msg, message._eom, start + offset, &text, Int32(text.count))
        guard used > 0, offset + Int(used) == data.count else { return nil }
        let name = text.decodedCString
        return name.isEmpty ? "." : name
    }

    static func ownerName(_ record: inout ns_rr) -> String {
        withUnsafeBytes(of: &record.name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    }

    /// Names compared as DNS does: ASCII letters without case (dn_expand escapes the rest).
    static func sameName(_ a: String, _ b: String) -> Bool {
        func folded(_ s: String) -> [UInt8] { s.utf8.map { (65...90).contains($0) ? $0 | 0x20 : $0 } }
        return folded(a) == folded(b)
    }

    /// A host name: dot-separated labels of 1-63 letters, digits and inner hyphens, at most 253
    /// bytes. Anything dn_expand escaped (a dot or `/` inside a label, a space) fails.
    static func isHostName(_ text: String) -> Bool {
        labelsAreValid(text) { $0 == UInt8(ascii: "-") }
    }

    /// A name we ask about: as a host name, but `_` may appear too (`_autodiscover._tcp`).
    static func isQueryName(_ text: String) -> Bool {
        labelsAreValid(text) { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
    }

    private static func labelsAreValid(_ text: String, allowing extra: (UInt8) -> Bool) -> Bool {
        guard (1...253).contains(text.utf8.count) else { return false }
        return text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).allSatisfy { label in
            guard (1...63).contains(label.count), label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-") else { return false }
            return label.allSatisfy { byte in
                (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || extra(byte)
            }
        }
    }
}

extension [CChar] {
    /// The text up to the first NUL, as UTF-8.
    var decodedCString: String { String(decoding: prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
}
