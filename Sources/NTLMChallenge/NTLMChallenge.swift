/// NTLM messages as HTTP servers send and expect them, read and built without Foundation:
/// the CHALLENGE_MESSAGE a server answers an anonymous NEGOTIATE with ([MS-NLMP] §2.2.1.2),
/// its AV pairs ([MS-NLMP] §2.2.2.1), the fixed NEGOTIATE_MESSAGE that asks for them
/// ([MS-NLMP] §2.2.1.1), and the SPNEGO envelopes ([RFC 4178] §4.2) a `Negotiate`-only server
/// wraps them in. Reading the challenge names the server's domain before any credential is
/// sent (protocols.md §7.4).

/// What a CHALLENGE_MESSAGE says about the server. Optional names are nil when the AV pair is
/// absent or empty.
public struct NTLMChallengeInfo: Sendable, Equatable {
    /// TargetName: the NetBIOS domain of a domain member (NTLMSSP_TARGET_TYPE_DOMAIN), else the server's name.
    public var targetName: String
    /// MsvAvNbDomainName (2), or TargetName when the message has no AV pairs and names a domain.
    public var netbiosDomain: String
    /// MsvAvNbComputerName (1).
    public var netbiosComputer: String?
    /// MsvAvDnsDomainName (4).
    public var dnsDomain: String?
    /// MsvAvDnsComputerName (3): the server's FQDN.
    public var dnsComputer: String?
    /// MsvAvDnsTreeName (5): the forest.
    public var forest: String?
    /// MsvAvTimestamp (7): FILETIME, 100 ns ticks since 1601-01-01 UTC.
    public var timestamp: UInt64?
    public var negotiateFlags: UInt32
    /// The Version field (when NTLMSSP_NEGOTIATE_VERSION is set), e.g. 10.0 build 17763.
    public var version: Version?

    public struct Version: Sendable, Equatable {
        public var major: UInt8
        public var minor: UInt8
        public var build: UInt16
        public var revision: UInt8

        public init(major: UInt8, minor: UInt8, build: UInt16, revision: UInt8) {
            self.major = major
            self.minor = minor
            self.build = build
            self.revision = revision
        }
    }

    public init(
        targetName: String, netbiosDomain: String, netbiosComputer: String? = nil, dnsDomain: String? = nil,
        dnsComputer: String? = nil, forest: String? = nil, timestamp: UInt64? = nil, negotiateFlags: UInt32 = 0,
        version: Version? = nil
    ) {
        self.targetName = targetName
        self.netbiosDomain = netbiosDomain
        self.netbiosComputer = netbiosComputer
        self.dnsDomain = dnsDomain
        self.dnsComputer = dnsComputer
        self.forest = forest
        self.timestamp = timestamp
        self.negotiateFlags = negotiateFlags
        self.version = version
    }

    /// NTLMSSP_TARGET_TYPE_DOMAIN: TargetName is a domain (the server is a domain member).
    public var targetIsDomain: Bool { negotiateFlags & NTLMFlags.targetTypeDomain != 0 }
}

/// NegotiateFlags bits ([MS-NLMP] §2.2.2.5).
public enum NTLMFlags {
    public static let unicode: UInt32 = 0x0000_0001
    public static let oem: UInt32 = 0x0000_0002
    public static let requestTarget: UInt32 = 0x0000_0004
    public static let ntlm: UInt32 = 0x0000_0200
    public static let alwaysSign: UInt32 = 0x0000_8000
    public static let targetTypeDomain: UInt32 = 0x0001_0000
    public static let targetTypeServer: UInt32 = 0x0002_0000
    public static let extendedSessionSecurity: UInt32 = 0x0008_0000
    public static let targetInfo: UInt32 = 0x0080_0000
    public static let version: UInt32 = 0x0200_0000
    public static let key128: UInt32 = 0x2000_0000
    public static let keyExchange: UInt32 = 0x4000_0000
    public static let key56: UInt32 = 0x8000_0000
}

/// One defect per case, so a message says exactly what is wrong with the server's token.
public enum NTLMChallengeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Shorter than the fixed part (48 bytes, 56 with a Version).
    case tooShort(length: Int, needed: Int)
    /// The first 8 bytes are not "NTLMSSP\0".
    case badSignature
    /// MessageType is not 2 (a NEGOTIATE or AUTHENTICATE message, or garbage).
    case wrongMessageType(UInt32)
    /// A field's offset and length do not lie inside the payload of the message.
    case fieldOutOfBounds(field: String, offset: Int, length: Int, messageLength: Int)
    /// A UTF-16LE string of odd length, or one with an unpaired surrogate.
    case invalidUTF16(field: String)
    /// An AV pair's header or value runs past the end of TargetInfo.
    case avPairTruncated(offset: Int)
    /// TargetInfo ends without MsvAvEOL.
    case missingEndOfList
    /// MsvAvEOL with a non-zero AvLen.
    case endOfListNotEmpty(length: Int)
    /// Bytes after MsvAvEOL inside TargetInfo.
    case dataAfterEndOfList(bytes: Int)
    /// The same AV pair twice: two different answers to one question.
    case duplicateAvPair(id: UInt16)
    /// MsvAvFlags must be 4 bytes, MsvAvTimestamp 8.
    case badAvPairLength(id: UInt16, length: Int)
    /// No MsvAvNbDomainName and TargetName does not name a domain.
    case noDomainName
    /// Not an SPNEGO token this reader understands, or one without an NTLM token in it.
    case invalidSPNEGO(String)

    public var description: String {
        switch self {
        case .tooShort(let length, let needed):
            "the NTLM challenge is \(length) bytes, shorter than its fixed part (\(needed) bytes)"
        case .badSignature: "the token does not start with the NTLMSSP signature"
        case .wrongMessageType(let type): "the NTLM message is of type \(type), not a CHALLENGE (2)"
        case .fieldOutOfBounds(let field, let offset, let length, let messageLength):
            "the NTLM challenge's \(field) (\(length) bytes at offset \(offset)) lies outside its payload (\(messageLength) bytes)"
        case .invalidUTF16(let field): "the NTLM challenge's \(field) is not valid UTF-16LE"
        case .avPairTruncated(let offset): "an AV pair at offset \(offset) of TargetInfo runs past its end"
        case .missingEndOfList: "TargetInfo does not end with MsvAvEOL"
        case .endOfListNotEmpty(let length): "MsvAvEOL carries \(length) bytes; it must be empty"
        case .dataAfterEndOfList(let bytes): "TargetInfo has \(bytes) bytes after MsvAvEOL"
        case .duplicateAvPair(let id): "TargetInfo has AV pair \(id) twice"
        case .badAvPairLength(let id, let length): "AV pair \(id) is \(length) bytes long, which its type does not allow"
        case .noDomainName: "the NTLM challenge names no domain (no MsvAvNbDomainName, TargetName is a server)"
        case .invalidSPNEGO(let why): "the Negotiate token is not SPNEGO-wrapped NTLM: \(why)"
        }
    }
}

extension NTLMChallengeInfo {
    /// AV pair ids ([MS-NLMP] §2.2.2.1).
    enum AvID {
        static let eol: UInt16 = 0
        static let nbComputer: UInt16 = 1
        static let nbDomain: UInt16 = 2
        static let dnsComputer: UInt16 = 3
        static let dnsDomain: UInt16 = 4
        static let dnsTree: UInt16 = 5
        static let flags: UInt16 = 6
        static let timestamp: UInt16 = 7
    }

    static let signature: [UInt8] = Array("NTLMSSP".utf8) + [0]

    /// Reads a raw CHALLENGE_MESSAGE. Every offset and length is checked against the message,
    /// strings are strict UTF-16LE (OEM TargetName only without NTLMSSP_NEGOTIATE_UNICODE), and
    /// TargetInfo must be a well-formed AV pair list ending in MsvAvEOL.
    public static func parse(_ bytes: [UInt8]) throws(NTLMChallengeError) -> NTLMChallengeInfo {
        // Signature 8, MessageType 4, TargetNameFields 8, NegotiateFlags 4, ServerChallenge 8,
        // Reserved 8, TargetInfoFields 8 = 48; Version 8 more when its flag is set.
        guard bytes.count >= 12 else { throw .tooShort(length: bytes.count, needed: 48) }
        guard bytes[0..<8].elementsEqual(signature) else { throw .badSignature }
        let type = le32(bytes, 8)
        guard type == 2 else { throw .wrongMessageType(type) }
        guard bytes.count >= 48 else { throw .tooShort(length: bytes.count, needed: 48) }
        let flags = le32(bytes, 20)
        var headerEnd = 48
        var version: Version?
        if flags & NTLMFlags.version != 0 {
            guard bytes.count >= 56 else { throw .tooShort(length: bytes.count, needed: 56) }
            version = Version(major: bytes[48], minor: bytes[49], build: UInt16(bytes[50]) | UInt16(bytes[51]) << 8, revision: bytes[55])
            headerEnd = 56
        }
        let targetNameBytes = try field(bytes, at: 12, name: "TargetName", headerEnd: headerEnd)
        let targetName: String
        if flags & NTLMFlags.unicode != 0 {
            targetName = try utf16(targetNameBytes, field: "TargetName")
        } else {
            // OEM: the code page is the server's; ASCII is what domain names use.
            targetName = String(decoding: targetNameBytes, as: UTF8.self)
        }
        let targetInfo = try field(bytes, at: 40, name: "TargetInfo", headerEnd: headerEnd)
        let pairs = try avPairs(targetInfo)

        func name(_ id: UInt16) throws(NTLMChallengeError) -> String? {
            guard let value = pairs[id] else { return nil }
            let text = try utf16(value, field: "AV pair \(id)")
            return text.isEmpty ? nil : text
        }
        let nbDomain = try name(AvID.nbDomain)
        let isDomain = flags & NTLMFlags.targetTypeDomain != 0
        guard let netbiosDomain = nbDomain ?? (isDomain && !targetName.isEmpty ? targetName : nil) else { throw .noDomainName }
        var timestamp: UInt64?
        if let value = pairs[AvID.timestamp] {
            timestamp = value.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        return NTLMChallengeInfo(
            targetName: targetName, netbiosDomain: netbiosDomain, netbiosComputer: try name(AvID.nbComputer),
            dnsDomain: try name(AvID.dnsDomain), dnsComputer: try name(AvID.dnsComputer), forest: try name(AvID.dnsTree),
            timestamp: timestamp, negotiateFlags: flags, version: version)
    }

    /// A Len/MaxLen/Offset triple's bytes. MaxLen is ignored ([MS-NLMP]: it SHOULD equal Len).
    static func field(_ bytes: [UInt8], at position: Int, name: String, headerEnd: Int) throws(NTLMChallengeError) -> ArraySlice<UInt8> {
        let length = Int(le16(bytes, position))
        let offset = Int(le32(bytes, position + 4))
        guard length > 0 else { return [] }
        guard offset >= headerEnd, offset <= bytes.count, length <= bytes.count - offset else {
            throw .fieldOutOfBounds(field: name, offset: offset, length: length, messageLength: bytes.count)
        }
        return bytes[offset..<(offset + length)]
    }

    /// AV_PAIR list: AvId 2, AvLen 2, Value; MsvAvEOL (empty) ends it and nothing follows.
    static func avPairs(_ info: ArraySlice<UInt8>) throws(NTLMChallengeError) -> [UInt16: ArraySlice<UInt8>] {
        var pairs: [UInt16: ArraySlice<UInt8>] = [:]
        guard !info.isEmpty else { return pairs }
        var at = info.startIndex
        while true {
            guard info.endIndex - at >= 4 else {
                if at == info.endIndex { throw .missingEndOfList }
                throw .avPairTruncated(offset: at - info.startIndex)
            }
            let id = UInt16(info[at]) | UInt16(info[at + 1]) << 8
            let length = Int(UInt16(info[at + 2]) | UInt16(info[at + 3]) << 8)
            let valueStart = at + 4
            guard info.endIndex - valueStart >= length else { throw .avPairTruncated(offset: at - info.startIndex) }
            if id == AvID.eol {
                guard length == 0 else { throw .endOfListNotEmpty(length: length) }
                let rest = info.endIndex - valueStart
                guard rest == 0 else { throw .dataAfterEndOfList(bytes: rest) }
                return pairs
            }
            if id == AvID.flags && length != 4 || id == AvID.timestamp && length != 8 {
                throw .badAvPairLength(id: id, length: length)
            }
            guard pairs[id] == nil else { throw .duplicateAvPair(id: id) }
            pairs[id] = info[valueStart..<(valueStart + length)]
            at = valueStart + length
        }
    }

    /// Strict UTF-16LE: even length, surrogates paired.
    static func utf16(_ bytes: ArraySlice<UInt8>, field: String) throws(NTLMChallengeError) -> String {
        guard bytes.count % 2 == 0 else { throw .invalidUTF16(field: field) }
        var units: [UInt16] = []
        units.reserveCapacity(bytes.count / 2)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            units.append(UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8)
            i += 2
        }
        var text = ""
        var iterator = units.makeIterator()
        var decoder = UTF16()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): text.unicodeScalars.append(scalar)
            case .emptyInput: return text
            case .error: throw .invalidUTF16(field: field)
            }
        }
    }

    static func le16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    static func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
}
