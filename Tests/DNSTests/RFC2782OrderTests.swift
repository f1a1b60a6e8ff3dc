import Testing

@testable import DNS

@Suite struct RFC2782OrderTests {
    @Test func recordsAreOrderedByPriorityThenWeighted() {
        let records = [
            SRVRecord(priority: 20, weight: 0, port: 443, target: "c"), SRVRecord(priority: 10, weight: 0, port: 443, target: "b"),
            SRVRecord(priority: 10, weight: 100, port: 443, target: "a"), SRVRecord(priority: 5, weight: 0, port: 443, target: "."),
        ]
        let ordered = SRVResolver.rfc2782Order(records, random: { $0 }) // always the largest pick: heaviest first
        #expect(ordered.map(\.target) == ["a", "b", "c"])
        let zeroFirst = SRVResolver.rfc2782Order(records, random: { _ in 0 })
        #expect(zeroFirst.map(\.target) == ["b", "a", "c"])
    }
}
