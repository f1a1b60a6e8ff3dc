// Fuzz target (e): the NTLM CHALLENGE_MESSAGE an Exchange server answers the anonymous
// NEGOTIATE with ([MS-NLMP] §2.2.1.2, AV pairs §2.2.2.1), raw or inside an SPNEGO NegTokenResp.
// The token comes from any https endpoint Autodiscover's rules reach, before any credential is
// sent, so it is as untrusted as input gets.
//
// Checks: NTLMChallengeInfo.parse never traps; it succeeds exactly when an independent reference
// reader (below: a cursor over the bytes, String(validating:as: UTF16.self) for the names)
// accepts the message, with the same values; a message rebuilt from what was read parses to the
// same values (the reader keeps nothing it cannot say again); parse(httpToken:) on a raw message
// agrees with parse; and every success names a non-empty domain.

import FuzzSupport
import NTLMChallenge

/// The reference reader: the same rules, written another way.
enum Reference {
    struct Info: Equatable {
        var targetName = "", netbiosDomain = ""
        var names: [UInt16: String] = [:]
        var timestamp: UInt64?
        var flags: UInt32 = 0
        var version: [UInt8]?
    }

    struct Cursor {
        let bytes: [UInt8]
        func u16(_ at: Int) -> Int { Int(bytes[at]) + Int(bytes[at + 1]) * 256 }
        func u32(_ at: Int) -> Int { u16(at) + u16(at + 2) * 65536 }
    }

    static func text(_ bytes: ArraySlice<UInt8>) -> String? {
        guard bytes.count % 2 == 0 else { return nil }
        let units = stride(from: bytes.startIndex, to: bytes.endIndex, by: 2).map { UInt16(bytes[$0]) + UInt16(bytes[$0 + 1]) * 256 }
        return String(validating: units, as: UTF16.self)
    }

    static func read(_ bytes: [UInt8]) -> Info? {
        let c = Cursor(bytes: bytes)
        guard bytes.count >= 48, Array(bytes[0..<8]) == Array("NTLMSSP\u{0}".utf8), c.u32(8) == 2 else { return nil }
        var info = Info()
        info.flags = UInt32(c.u32(20))
        let hasVersion = info.flags & 0x0200_0000 != 0
        if hasVersion && bytes.count < 56 { return nil }
        let start = hasVersion ? 56 : 48
        if hasVersion { info.version = [bytes[48], bytes[49], bytes[50], bytes[51], bytes[55]] }
        func field(_ at: Int) -> ArraySlice<UInt8>? {
            let length = c.u16(at)
            let offset = c.u32(at + 4)
            if length == 0 { return [] }
            return offset >= start && offset + length <= bytes.count ? bytes[offset..<(offset + length)] : nil
        }
        guard let name = field(12), let targetInfo = field(40) else { return nil }
        if info.flags & 1 != 0 {
            guard let t = text(name) else { return nil }
            info.targetName = t
        } else {
            info.targetName = String(decoding: name, as: UTF8.self)
        }
        var values: [UInt16: ArraySlice<UInt8>] = [:]
        var at = targetInfo.startIndex
        var ended = targetInfo.isEmpty
        while !ended {
            guard targetInfo.endIndex - at >= 4 else { return nil }
            let id = UInt16(c.u16(at))
            let length = c.u16(at + 2)
            guard at + 4 + length <= targetInfo.endIndex else { return nil }
            let value = bytes[(at + 4)..<(at + 4 + length)]
            at += 4 + length
            switch id {
            case 0:
                guard length == 0, at == targetInfo.endIndex else { return nil }
                ended = true
            default:
                if (id == 6 && length != 4) || (id == 7 && length != 8) || values[id] != nil { return nil }
                values[id] = value
            }
        }
        for id: UInt16 in 1...5 {
            guard let value = values[id] else { continue }
            guard let t = text(value) else { return nil }
            if !t.isEmpty { info.names[id] = t }
        }
        if let stamp = values[7] { info.timestamp = stamp.enumerated().reduce(0) { $0 + UInt64($1.element) << (8 * UInt64($1.offset)) } }
        let isDomain = info.flags & 0x0001_0000 != 0
        guard let domain = info.names[2] ?? (isDomain && !info.targetName.isEmpty ? info.targetName : nil) else { return nil }
        info.netbiosDomain = domain
        return info
    }

    static func same(_ a: NTLMChallengeInfo, _ b: Info) -> Bool {
        a.targetName == b.targetName && a.netbiosDomain == b.netbiosDomain && a.netbiosComputer == b.names[1]
            && a.dnsComputer == b.names[3] && a.dnsDomain == b.names[4] && a.forest == b.names[5] && a.timestamp == b.timestamp
            && a.negotiateFlags == b.flags
            && a.version.map { [$0.major, $0.minor, UInt8($0.build & 0xff), UInt8($0.build >> 8), $0.revision] } == b.version
    }
}

/// A Windows-shaped message from what was read (Unicode, Version, TargetName, TargetInfo).
func rebuild(_ info: NTLMChallengeInfo) -> [UInt8] {
    func utf16(_ s: String) -> [UInt8] { s.utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] } }
    func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff)] }
    func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }
    let flags = info.negotiateFlags | NTLMFlags.unicode | NTLMFlags.version
    var pairs: [UInt8] = []
    for (id, value) in [(1, info.netbiosComputer), (2, Optional(info.netbiosDomain)), (3, info.dnsComputer), (4, info.dnsDomain), (5, info.forest)] {
        if let value { pairs += le16(id) + le16(utf16(value).count) + utf16(value) }
    }
    if let t = info.timestamp { pairs += le16(7) + le16(8) + (0..<8).map { UInt8(t >> (8 * UInt64($0)) & 0xff) } }
    pairs += [0, 0, 0, 0]
    let name = utf16(info.targetName)
    guard name.count <= 0xffff, pairs.count <= 0xffff else { return [] }
    var m = Array("NTLMSSP\u{0}".utf8) + le32(2) + le16(name.count) + le16(name.count) + le32(56) + le32(flags) + [UInt8](repeating: 7, count: 16)
    m += le16(pairs.count) + le16(pairs.count) + le32(UInt32(56 + name.count))
    let v = info.version ?? .init(major: 10, minor: 0, build: 17763, revision: 15)
    m += [v.major, v.minor, UInt8(v.build & 0xff), UInt8(v.build >> 8), 0, 0, 0, v.revision]
    return m + name + pairs
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNTLMChallenge(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let parsed = try? NTLMChallengeInfo.parse(bytes)
    let reference = Reference.read(bytes)
    invariant((parsed == nil) == (reference == nil), "parse \(parsed == nil ? "failed" : "succeeded"), the reference disagrees for \(escaped(bytes))")
    if let parsed, let reference {
        invariant(Reference.same(parsed, reference), "parse read \(parsed), the reference \(reference) for \(escaped(bytes))")
        invariant(!parsed.netbiosDomain.isEmpty, "an empty domain for \(escaped(bytes))")
        // Unicode TargetName only: OEM bytes that are not UTF-8 were repaired, which is not a round trip.
        if parsed.negotiateFlags & NTLMFlags.unicode != 0 {
            let again = rebuild(parsed)
            if !again.isEmpty {
                var expected = parsed
                expected.negotiateFlags |= NTLMFlags.version
                if parsed.version == nil { expected.version = .init(major: 10, minor: 0, build: 17763, revision: 15) }
                let reread = try? NTLMChallengeInfo.parse(again)
                invariant(reread == expected, "a rebuilt message reads \(String(describing: reread)), not \(expected)")
            }
        }
    }
    // The HTTP entry point: a raw message is read the same; anything else is SPNEGO or an error.
    let viaHTTP = try? NTLMChallengeInfo.parse(httpToken: bytes)
    if bytes.starts(with: Array("NTLMSSP\u{0}".utf8)) {
        invariant(viaHTTP == parsed, "parse(httpToken:) differs from parse for \(escaped(bytes))")
    } else if let viaHTTP {
        invariant(bytes.first == 0xa1 && !viaHTTP.netbiosDomain.isEmpty, "a non-SPNEGO token parsed: \(escaped(bytes))")
    }
    return 0
}
