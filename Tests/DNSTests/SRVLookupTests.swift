import Testing
import Threading

@testable import DNS

/// Lookups through glibc's resolver against real servers on loopback. Time bounds here are the
/// deadline contract (a lookup ends by its deadline, plus a margin for a loaded machine), not
/// speed claims.
@Suite struct SRVLookupTests {
    static let margin = 0.5

    func lookup(_ zone: String, server: String, seconds: Double = 5) async throws(DNSError) -> [SRVRecord] {
        try await SRVResolver(server: server).lookup("_autodiscover._tcp.\(zone).test", deadline: monotonicSeconds() + seconds)
    }

    func failure(_ body: () async throws(DNSError) -> [SRVRecord]) async -> DNSError? {
        do throws(DNSError) {
            let records = try await body()
            Issue.record("expected an error, got \(records)")
            return nil
        } catch {
            return error
        }
    }

    // MARK: dnsmasq

    @Test func severalRecordsComeBackInRFC2782Order() async throws {
        let dns = try await Dnsmasq.start(srvHosts: [
            "_autodiscover._tcp.contoso.test,mail1.contoso.test,443,10,60",
            "_autodiscover._tcp.contoso.test,mail2.contoso.test,443,10,20",
            "_autodiscover._tcp.contoso.test,first.contoso.test,443,5,0",
            "_autodiscover._tcp.contoso.test,old.contoso.test,80,20,0",
        ])
        let records = try await lookup("contoso", server: "127.0.0.1:\(dns.port)")
        #expect(records.count == 4)
        #expect(records.first == SRVRecord(priority: 5, weight: 0, port: 443, target: "first.contoso.test"))
        #expect(Set(records[1...2].map(\.target)) == ["mail1.contoso.test", "mail2.contoso.test"])
        #expect(records.last == SRVRecord(priority: 20, weight: 0, port: 80, target: "old.contoso.test"))
    }

    @Test func nxdomainIsAnEmptyList() async throws {
        let dns = try await Dnsmasq.start(srvHosts: ["_autodiscover._tcp.contoso.test,mail.contoso.test,443"])
        #expect(try await lookup("fabrikam", server: "127.0.0.1:\(dns.port)") == [])
    }

    /// 40 long targets do not fit in 512 bytes: dnsmasq answers over UDP with TC set, and
    /// only the TCP retry brings them all.
    @Test func anAnswerTooLargeForUDPArrivesOverTCP() async throws {
        let hosts = (0..<40).map { "_autodiscover._tcp.big.test,host-\($0)-with-a-long-label-to-fill-the-packet.big.test,443,0,1" }
        let dns = try await Dnsmasq.start(srvHosts: hosts)
        let records = try await lookup("big", server: "127.0.0.1:\(dns.port)")
        #expect(records.count == 40)
    }

    @Test(.enabled(if: LoopbackDNS.hasIPv6Loopback, "this machine has no ::1"))
    func anIPv6ServerWithAPortIsAsked() async throws {
        let dns = try await Dnsmasq.start(srvHosts: ["_autodiscover._tcp.contoso.test,mail.contoso.test,443"], listen: ["::1"])
        let records = try await lookup("contoso", server: "[::1]:\(dns.port)")
        #expect(records.map(\.target) == ["mail.contoso.test"])
    }

    // MARK: odd_dns.py

    @Test func servfailIsAnError() async throws {
        let dns = try await OddDNSServer.start()
        #expect(
            await failure { () async throws(DNSError) in try await lookup("servfail", server: "127.0.0.1:\(dns.port)") }
                == .serverFailure(rcode: 2))
    }

    @Test func aTruncatedUDPAnswerIsAskedAgainOverTCP() async throws {
        let dns = try await OddDNSServer.start()
        let records = try await lookup("truncated", server: "127.0.0.1:\(dns.port)")
        #expect(records.map(\.target) == ["mail.truncated.test", "backup.truncated.test"])
        #expect(dns.transports(for: "_autodiscover._tcp.truncated.test") == ["udp", "tcp"])
    }

    @Test func aReplyFromAnotherPortIsIgnoredEvenWithTheRightID() async throws {
        let dns = try await OddDNSServer.start()
        let records = try await lookup("spoofed", server: "127.0.0.1:\(dns.port)")
        #expect(records.map(\.target) == ["mail.spoofed.test"])
    }

    @Test func aReplyToAnotherQuestionIsIgnored() async throws {
        let dns = try await OddDNSServer.start()
        let records = try await lookup("wrongquestion", server: "127.0.0.1:\(dns.port)")
        #expect(records.map(\.target) == ["mail.wrongquestion.test"])
    }

    @Test func aMessageWithoutTheResponseBitIsNoAnswer() async throws {
        let dns = try await OddDNSServer.start()
        let error = await failure { () async throws(DNSError) in try await lookup("notaresponse", server: "127.0.0.1:\(dns.port)", seconds: 1.5) }
        #expect(error == .malformedResponse("it is not a response to a query"))
    }

    /// `we/b`, `a.b` and `evil.test\` as labels: dn_expand escapes the dot and the backslash
    /// (`a\.b`, `evil\.test\\`; `/` is printable and stays), and none of them becomes a host
    /// name; the valid record still comes through.
    @Test func targetsWithOddBytesNeverBecomeHostNames() async throws {
        let dns = try await OddDNSServer.start()
        let records = try await lookup("odd", server: "127.0.0.1:\(dns.port)")
        #expect(records.map(\.target) == ["mail.odd.test"])
        let error = await failure { () async throws(DNSError) in try await lookup("allodd", server: "127.0.0.1:\(dns.port)") }
        guard case .invalidTarget(let target)? = error else {
            Issue.record("\(String(describing: error))")
            return
        }
        #expect(["we/b.odd.test", #"a\.b.odd.test"#, #"evil\.test\\.odd.test"#].contains(target), "\(target)")
    }

    @Test func aCompressionLoopIsAMalformedAnswer() async throws {
        let dns = try await OddDNSServer.start()
        let error = await failure { () async throws(DNSError) in try await lookup("loop", server: "127.0.0.1:\(dns.port)") }
        guard case .malformedResponse? = error else {
            Issue.record("\(String(describing: error))")
            return
        }
    }

    @Test(arguments: [1.5, 0.4])
    func aServerThatNeverAnswersTimesOutByTheDeadline(seconds: Double) async throws {
        let dns = try await OddDNSServer.start()
        let started = monotonicSeconds()
        let error = await failure { () async throws(DNSError) in try await lookup("hang", server: "127.0.0.1:\(dns.port)", seconds: seconds) }
        let elapsed = monotonicSeconds() - started
        #expect(error == .timeout(server: "127.0.0.1:\(dns.port)"))
        #expect(elapsed < seconds + Self.margin, "took \(elapsed) s for a \(seconds) s deadline")
    }

    /// glibc's TCP retry has no timeout of its own; the deadline still ends the lookup.
    @Test func aTCPRetryThatHangsStillEndsByTheDeadline() async throws {
        let dns = try await OddDNSServer.start()
        let started = monotonicSeconds()
        let error = await failure { () async throws(DNSError) in try await lookup("tcphang", server: "127.0.0.1:\(dns.port)", seconds: 1.5) }
        let elapsed = monotonicSeconds() - started
        #expect(error == .timeout(server: "127.0.0.1:\(dns.port)"))
        #expect(elapsed < 1.5 + Self.margin, "took \(elapsed) s")
    }

    @Test func aHangingLookupDoesNotDelayAnother() async throws {
        let dns = try await OddDNSServer.start()
        let server = "127.0.0.1:\(dns.port)"
        let resolver = SRVResolver(server: server)
        let started = monotonicSeconds()
        async let hanging = try? resolver.lookup("_autodiscover._tcp.hang.test", deadline: started + 4)
        let records = try await resolver.lookup("_autodiscover._tcp.plain.test", deadline: started + 4)
        let answeredAfter = monotonicSeconds() - started
        #expect(records.map(\.target).first == "first.plain.test")
        #expect(answeredAfter < 2, "the answer waited \(answeredAfter) s behind the hanging lookup")
        #expect(await hanging == nil)
    }

    @Test(.enabled(if: LoopbackDNS.hasIPv6Loopback, "this machine has no ::1"))
    func aReplyFromAnotherIPv6PortIsIgnoredToo() async throws {
        let dns = try await OddDNSServer.start()
        let port6 = try #require(dns.port6)
        let records = try await lookup("spoofed", server: "[::1]:\(port6)")
        #expect(records.map(\.target) == ["mail.spoofed.test"])
    }

    // MARK: arguments

    @Test(arguments: [
        ("127.0.0.1", DNSServerAddress(family: .ipv4, address: "127.0.0.1", port: 53)),
        ("10.0.0.2:5353", DNSServerAddress(family: .ipv4, address: "10.0.0.2", port: 5353)),
        ("[::1]:65535", DNSServerAddress(family: .ipv6, address: "::1", port: 65535)),
        ("[2001:db8::1]", DNSServerAddress(family: .ipv6, address: "2001:db8::1", port: 53)),
        ("::1", DNSServerAddress(family: .ipv6, address: "::1", port: 53)),
        ("2001:db8::53", DNSServerAddress(family: .ipv6, address: "2001:db8::53", port: 53)),
    ])
    func serverAddressesAreParsed(_ text: String, _ expected: DNSServerAddress) {
        #expect(SRVResolver.parseServer(text) == expected)
    }

    @Test(arguments: [
        "", "localhost", "localhost:53", "dns.example:53", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:+53", "127.0.0.1:-1", "127.0.0.1:53:53", "127.0.0.1:٥٣", "127.0.0.1 ", " 127.0.0.1",
        "1.2.3", "01.2.3.4", "256.1.1.1", "[127.0.0.1]:53", "[::1]:", "[::1]53", "[::1", "::1]:53",
        "[::1]:0", "[::1]:99999", "fe80::1%lo", "::g",
    ])
    func badServerAddressesAreRejected(_ text: String) async {
        #expect(SRVResolver.parseServer(text) == nil)
        let error = await failure { () async throws(DNSError) in try await SRVResolver(server: text).lookup("_autodiscover._tcp.a.test") }
        #expect(error == .invalidServer(text))
    }

    @Test(arguments: ["", "a..test", "-a.test", "a b.test", "a/b.test", "ä.test", String(repeating: "a", count: 64) + ".test"])
    func namesThatAreNotDNSNamesAreNotAsked(_ name: String) async {
        let error = await failure { () async throws(DNSError) in try await SRVResolver(server: "127.0.0.1:1").lookup(name) }
        #expect(error == .invalidName(name))
    }
}
