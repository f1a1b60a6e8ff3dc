import Testing
import Threading

@testable import DNS

/// A and AAAA lookups (diagnosis' DNS step) through the same glibc resolver as SRV, against dnsmasq.
@Suite struct AddressLookupTests {
    func addresses(_ name: String, _ dns: Dnsmasq) async throws(DNSError) -> [String] {
        try await SRVResolver(server: "127.0.0.1:\(dns.port)").addresses(of: name, deadline: monotonicSeconds() + 5)
    }

    @Test func bothFamiliesComeBackIPv4First() async throws {
        let dns = try await Dnsmasq.start(srvHosts: [], records: ["--host-record=mail.contoso.test,192.0.2.10,2001:db8::10"])
        #expect(try await addresses("mail.contoso.test", dns) == ["192.0.2.10", "2001:db8::10"])
    }

    @Test func aCNAMEIsFollowedToItsTarget() async throws {
        let dns = try await Dnsmasq.start(
            srvHosts: [], records: ["--host-record=mail.contoso.test,192.0.2.10", "--cname=autodiscover.contoso.test,mail.contoso.test"])
        #expect(try await addresses("autodiscover.contoso.test", dns) == ["192.0.2.10"])
    }

    @Test func anUnknownNameHasNoAddresses() async throws {
        let dns = try await Dnsmasq.start(srvHosts: [], records: ["--host-record=mail.contoso.test,192.0.2.10"])
        #expect(try await addresses("nothing.contoso.test", dns) == [])
    }

    @Test func aNameThatIsNotADNSNameIsRefusedBeforeAnyQuery() async throws {
        let dns = try await Dnsmasq.start(srvHosts: [])
        await #expect(throws: DNSError.invalidName("bad name.test")) { try await addresses("bad name.test", dns) }
    }
}
