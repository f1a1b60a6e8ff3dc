import Foundation
import Testing

@testable import NTLMChallenge

/// Hand-built CHALLENGE_MESSAGEs ([MS-NLMP] §2.2.1.2) with the layout Windows uses: the fixed
/// part, Version, TargetName, then TargetInfo.
struct ChallengeBuilder {
    var flags: UInt32 = NTLMFlags.unicode | NTLMFlags.targetTypeDomain | NTLMFlags.targetInfo | NTLMFlags.version | NTLMFlags.ntlm
    var targetName: [UInt8] = utf16("CONTOSO")
    var pairs: [(UInt16, [UInt8])] = [
        (2, utf16("CONTOSO")), (1, utf16("EXCH01")), (4, utf16("corp.contoso.com")),
        (3, utf16("exch01.corp.contoso.com")), (5, utf16("contoso.com")),
        (7, [0x00, 0x80, 0x3e, 0xd5, 0xde, 0xb1, 0x9d, 0x01]),
    ]
    var endOfList = true
    var targetNameOffset: UInt32?
    var targetInfoLength: UInt16?

    static func utf16(_ s: String) -> [UInt8] { s.utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] } }
    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    static func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }

    var targetInfo: [UInt8] {
        var info: [UInt8] = []
        for (id, value) in pairs { info += Self.le16(id) + Self.le16(UInt16(value.count)) + value }
        if endOfList { info += [0, 0, 0, 0] }
        return info
    }

    var bytes: [UInt8] {
        let header = flags & NTLMFlags.version != 0 ? 56 : 48
        let info = targetInfo
        let nameOffset = targetNameOffset ?? UInt32(header)
        let infoOffset = UInt32(header + targetName.count)
        var m = Array("NTLMSSP".utf8) + [0] + Self.le32(2)
        m += Self.le16(UInt16(targetName.count)) + Self.le16(UInt16(targetName.count)) + Self.le32(nameOffset)
        m += Self.le32(flags) + [1, 2, 3, 4, 5, 6, 7, 8] + [UInt8](repeating: 0, count: 8)
        let infoLength = targetInfoLength ?? UInt16(info.count)
        m += Self.le16(infoLength) + Self.le16(infoLength) + Self.le32(infoOffset)
        if header == 56 { m += [10, 0, 0x71, 0x45, 0, 0, 0, 15] } // 10.0 build 17777, NTLMSSP_REVISION_W2K3
        return m + targetName + info
    }
}

@Suite struct NTLMChallengeParsingTests {
    @Test func readsEveryNameOfADomainMemberServer() throws {
        let info = try NTLMChallengeInfo.parse(ChallengeBuilder().bytes)
        #expect(info.targetName == "CONTOSO")
        #expect(info.netbiosDomain == "CONTOSO")
        #expect(info.netbiosComputer == "EXCH01")
        #expect(info.dnsDomain == "corp.contoso.com")
        #expect(info.dnsComputer == "exch01.corp.contoso.com")
        #expect(info.forest == "contoso.com")
        #expect(info.timestamp == 0x019d_b1de_d53e_8000)
        #expect(info.targetIsDomain)
        #expect(info.version == .init(major: 10, minor: 0, build: 17777, revision: 15))
    }

    @Test func withoutVersionThePayloadStartsAt48() throws {
        var b = ChallengeBuilder()
        b.flags &= ~NTLMFlags.version
        let info = try NTLMChallengeInfo.parse(b.bytes)
        #expect(info.version == nil && info.dnsDomain == "corp.contoso.com")
    }

    @Test func nonASCIINamesAndSurrogatePairsDecode() throws {
        var b = ChallengeBuilder()
        b.pairs[0] = (2, ChallengeBuilder.utf16("MÜNCHEN𝄞"))
        #expect(try NTLMChallengeInfo.parse(b.bytes).netbiosDomain == "MÜNCHEN𝄞")
    }

    @Test func withoutTargetInfoTheDomainIsTheTargetName() throws {
        var b = ChallengeBuilder()
        b.pairs = []
        b.endOfList = false
        b.flags &= ~NTLMFlags.targetInfo
        let info = try NTLMChallengeInfo.parse(b.bytes)
        #expect(info.netbiosDomain == "CONTOSO" && info.dnsDomain == nil)
    }

    @Test func aStandaloneServerWithoutDomainNameIsAnError() {
        var b = ChallengeBuilder()
        b.flags = b.flags & ~NTLMFlags.targetTypeDomain | NTLMFlags.targetTypeServer
        b.pairs = [(1, ChallengeBuilder.utf16("EXCH01"))]
        #expect(throws: NTLMChallengeError.noDomainName) { try NTLMChallengeInfo.parse(b.bytes) }
    }

    @Test func oemTargetNameWithoutTheUnicodeFlag() throws {
        var b = ChallengeBuilder()
        b.flags &= ~NTLMFlags.unicode
        b.targetName = Array("CONTOSO".utf8)
        #expect(try NTLMChallengeInfo.parse(b.bytes).targetName == "CONTOSO")
    }

    // One test per defect, each with the error that names it.

    @Test func tooShort() {
        let bytes = Array(ChallengeBuilder().bytes.prefix(40))
        #expect(throws: NTLMChallengeError.tooShort(length: 40, needed: 48)) { try NTLMChallengeInfo.parse(bytes) }
        #expect(throws: NTLMChallengeError.tooShort(length: 3, needed: 48)) { try NTLMChallengeInfo.parse([1, 2, 3]) }
        // The Version flag promises 8 more bytes.
        let noVersion = Array(ChallengeBuilder().bytes.prefix(52))
        #expect(throws: NTLMChallengeError.tooShort(length: 52, needed: 56)) { try NTLMChallengeInfo.parse(noVersion) }
    }

    @Test func signatureAndType() {
        var bytes = ChallengeBuilder().bytes
        bytes[0] = UInt8(ascii: "X")
        #expect(throws: NTLMChallengeError.badSignature) { try NTLMChallengeInfo.parse(bytes) }
        bytes = ChallengeBuilder().bytes
        bytes[8] = 1
        #expect(throws: NTLMChallengeError.wrongMessageType(1)) { try NTLMChallengeInfo.parse(bytes) }
    }

    @Test func offsetsOutsideTheMessage() {
        var b = ChallengeBuilder()
        b.targetNameOffset = 10_000
        #expect(throws: NTLMChallengeError.fieldOutOfBounds(field: "TargetName", offset: 10_000, length: 14, messageLength: b.bytes.count)) {
            try NTLMChallengeInfo.parse(b.bytes)
        }
        b.targetNameOffset = 0xffff_fff0 // offset + length overflows 32 bits
        #expect(throws: NTLMChallengeError.self) { try NTLMChallengeInfo.parse(b.bytes) }
        // Inside the fixed part: the "name" would be the header's own bytes.
        b.targetNameOffset = 12
        #expect(throws: NTLMChallengeError.fieldOutOfBounds(field: "TargetName", offset: 12, length: 14, messageLength: b.bytes.count)) {
            try NTLMChallengeInfo.parse(b.bytes)
        }
        var c = ChallengeBuilder()
        c.targetInfoLength = UInt16(c.targetInfo.count + 1)
        #expect(throws: NTLMChallengeError.self) { try NTLMChallengeInfo.parse(c.bytes) }
    }

    @Test func utf16Defects() {
        var b = ChallengeBuilder()
        b.targetName = [0x43, 0x00, 0x4f] // odd length
        #expect(throws: NTLMChallengeError.invalidUTF16(field: "TargetName")) { try NTLMChallengeInfo.parse(b.bytes) }
        b = ChallengeBuilder()
        b.pairs[0] = (2, [0x00, 0xd8, 0x41, 0x00]) // a lone high surrogate
        #expect(throws: NTLMChallengeError.invalidUTF16(field: "AV pair 2")) { try NTLMChallengeInfo.parse(b.bytes) }
    }

    @Test func avPairListDefects() {
        var b = ChallengeBuilder()
        b.endOfList = false
        #expect(throws: NTLMChallengeError.missingEndOfList) { try NTLMChallengeInfo.parse(b.bytes) }
        b = ChallengeBuilder()
        b.pairs.append((2, ChallengeBuilder.utf16("OTHER")))
        #expect(throws: NTLMChallengeError.duplicateAvPair(id: 2)) { try NTLMChallengeInfo.parse(b.bytes) }
        b = ChallengeBuilder()
        b.pairs[5] = (7, [1, 2, 3, 4])
        #expect(throws: NTLMChallengeError.badAvPairLength(id: 7, length: 4)) { try NTLMChallengeInfo.parse(b.bytes) }
        b = ChallengeBuilder()
        b.pairs = [(2, ChallengeBuilder.utf16("CONTOSO")), (0, [9, 9])]
        b.endOfList = false
        #expect(throws: NTLMChallengeError.endOfListNotEmpty(length: 2)) { try NTLMChallengeInfo.parse(b.bytes) }
        b = ChallengeBuilder()
        b.pairs = [(2, ChallengeBuilder.utf16("CONTOSO")), (0, []), (1, ChallengeBuilder.utf16("X"))]
        b.endOfList = false
        #expect(throws: NTLMChallengeError.dataAfterEndOfList(bytes: 6)) { try NTLMChallengeInfo.parse(b.bytes) }
        b = ChallengeBuilder()
        b.pairs = [(2, ChallengeBuilder.utf16("CONTOSO"))]
        b.endOfList = false
        var bytes = b.bytes + [0x01, 0x00, 0x20] // an AV pair header cut short (3 bytes), TargetInfo length to match
        bytes[40] = UInt8(b.targetInfo.count + 3)
        #expect(throws: NTLMChallengeError.avPairTruncated(offset: 18)) { try NTLMChallengeInfo.parse(bytes) }
        bytes = b.bytes + [0x01, 0x00, 0x20, 0x00] // AvLen 32 past the end
        bytes[40] = UInt8(b.targetInfo.count + 4)
        #expect(throws: NTLMChallengeError.avPairTruncated(offset: 18)) { try NTLMChallengeInfo.parse(bytes) }
    }

    @Test func theNegotiateMessageIsFixedAndCarriesNoName() {
        let m = NTLMNegotiate.message
        #expect(m.count == 32 && m.starts(with: Array("NTLMSSP".utf8) + [0, 1, 0, 0, 0]))
        #expect(Array(m[12..<16]) == ChallengeBuilder.le32(NTLMNegotiate.flags))
        // DomainNameFields and WorkstationFields: length 0, so no name leaves the machine.
        #expect(m[16] == 0 && m[17] == 0 && m[24] == 0 && m[25] == 0)
        #expect(NTLMNegotiate.flags & NTLMFlags.requestTarget != 0 && NTLMNegotiate.flags & NTLMFlags.targetInfo != 0)
    }

    @Test func spnegoResponseTokensAreUnwrapped() throws {
        let challenge = ChallengeBuilder().bytes
        let resp = DER.tlv(
            0xa1,
            DER.tlv(
                0x30,
                DER.tlv(0xa0, DER.tlv(0x0a, [1])) + DER.tlv(0xa1, DER.tlv(0x06, NTLMNegotiate.ntlmOID))
                    + DER.tlv(0xa2, DER.tlv(0x04, challenge))))
        #expect(try NTLMChallengeInfo.parse(httpToken: resp).dnsDomain == "corp.contoso.com")
        #expect(try NTLMChallengeInfo.parse(httpToken: challenge).netbiosDomain == "CONTOSO")
        let kerberos = DER.tlv(0xa1, DER.tlv(0x30, DER.tlv(0xa1, DER.tlv(0x06, [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02]))))
        #expect(throws: NTLMChallengeError.invalidSPNEGO("the server chose a mechanism other than NTLM")) {
            try NTLMChallengeInfo.parse(httpToken: kerberos)
        }
        let reject = DER.tlv(0xa1, DER.tlv(0x30, DER.tlv(0xa0, DER.tlv(0x0a, [2]))))
        #expect(throws: NTLMChallengeError.invalidSPNEGO("the server rejected NTLM (negState reject)")) {
            try NTLMChallengeInfo.parse(httpToken: reject)
        }
        #expect(throws: NTLMChallengeError.self) { try NTLMChallengeInfo.parse(httpToken: Array(resp.dropLast())) }
        #expect(throws: NTLMChallengeError.self) { try NTLMChallengeInfo.parse(httpToken: [0xa1, 0x80, 0x30, 0x00]) }
    }
}

/// pyspnego (a real, independent NTLM implementation) answers our fixed NEGOTIATE, raw and in
/// SPNEGO, and its CHALLENGE parses to the names it put in (its acceptor's defaults:
/// [MS-NLMP]-shaped, TargetName = the host name upper-cased, MsvAvNbDomainName WORKSTATION).
@Suite struct PyspnegoChallengeTests {
    func challenge(protocolName: String, token: [UInt8]) throws -> [UInt8] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ntlm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let users = dir.appendingPathComponent("users.txt")
        try "CONTOSO:alice:unused\n".write(to: users, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            ProcessInfo.processInfo.environment["SYNCWIZARD_TEST_PYTHON"] ?? "python3", "-c",
            "import base64,sys,spnego; print(base64.b64encode(spnego.server(protocol=sys.argv[1]).step(base64.b64decode(sys.argv[2]))).decode())",
            protocolName, Data(token).base64EncodedString(),
        ]
        var env = ProcessInfo.processInfo.environment
        env["NTLM_USER_FILE"] = users.path
        process.environment = env
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return [UInt8](try #require(Data(base64Encoded: text)))
    }

    var hostName: String { ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "" }

    @Test func rawNTLM() throws {
        let info = try NTLMChallengeInfo.parse(try challenge(protocolName: "ntlm", token: NTLMNegotiate.message))
        #expect(info.netbiosDomain == "WORKSTATION")
        #expect(info.targetName == info.netbiosComputer)
        #expect(info.targetName.uppercased() == info.targetName && !info.targetName.isEmpty)
        #expect(info.dnsComputer != nil && info.timestamp != nil)
        #expect(info.negotiateFlags & NTLMFlags.targetTypeServer != 0 && !info.targetIsDomain)
    }

    @Test func spnegoWrapped() throws {
        let token = try challenge(protocolName: "negotiate", token: NTLMNegotiate.spnegoMessage)
        #expect(token.first == 0xa1)
        #expect(try NTLMChallengeInfo.parse(httpToken: token).netbiosDomain == "WORKSTATION")
    }
}
