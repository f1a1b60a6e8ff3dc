/// The anonymous first leg: a fixed NEGOTIATE_MESSAGE ([MS-NLMP] §2.2.1.1) with no domain, no
/// workstation and no credential, and its SPNEGO NegTokenInit envelope ([RFC 4178] §4.2.1) for
/// servers that offer only `Negotiate`.
public enum NTLMNegotiate {
    /// UNICODE | OEM | REQUEST_TARGET | NTLM | ALWAYS_SIGN | EXTENDED_SESSIONSECURITY | TARGET_INFO
    /// | 128 | KEY_EXCH | 56: what Windows clients ask for; REQUEST_TARGET makes the server fill
    /// TargetName, and a CHALLENGE to it carries TargetInfo.
    public static let flags: UInt32 =
        NTLMFlags.unicode | NTLMFlags.oem | NTLMFlags.requestTarget | NTLMFlags.ntlm | NTLMFlags.alwaysSign
        | NTLMFlags.extendedSessionSecurity | NTLMFlags.targetInfo | NTLMFlags.key128 | NTLMFlags.keyExchange | NTLMFlags.key56

    /// Signature, MessageType 1, NegotiateFlags, empty DomainNameFields and WorkstationFields
    /// (offset 32, the end of the message): 32 bytes, no Version (its flag is clear).
    public static let message: [UInt8] = {
        var m = NTLMChallengeInfo.signature
        m += le32(1) + le32(flags)
        m += [0, 0, 0, 0] + le32(32) // DomainNameFields: Len 0, MaxLen 0, Offset 32
        m += [0, 0, 0, 0] + le32(32) // WorkstationFields
        return m
    }()

    /// 1.3.6.1.4.1.311.2.2.10, NTLMSSP's mechanism OID.
    static let ntlmOID: [UInt8] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a]
    /// 1.3.6.1.5.5.2, SPNEGO.
    static let spnegoOID: [UInt8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x02]

    /// GSS-API InitialContextToken { SPNEGO OID, NegTokenInit { mechTypes [NTLMSSP], mechToken } }.
    public static let spnegoMessage: [UInt8] = {
        let mechTypes = DER.tlv(0xa0, DER.tlv(0x30, DER.tlv(0x06, ntlmOID)))
        let mechToken = DER.tlv(0xa2, DER.tlv(0x04, message))
        let negTokenInit = DER.tlv(0xa0, DER.tlv(0x30, mechTypes + mechToken))
        return DER.tlv(0x60, DER.tlv(0x06, spnegoOID) + negTokenInit)
    }()

    static func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }
}

extension NTLMChallengeInfo {
    /// Reads the token of a `WWW-Authenticate: NTLM …` or `Negotiate …` answer: a raw
    /// CHALLENGE_MESSAGE, or one inside an SPNEGO NegTokenResp's responseToken ([RFC 4178]
    /// §4.2.2; Windows also answers raw NTLM to a raw NTLM NEGOTIATE sent as Negotiate).
    public static func parse(httpToken bytes: [UInt8]) throws(NTLMChallengeError) -> NTLMChallengeInfo {
        if bytes.starts(with: signature) { return try parse(bytes) }
        return try parse(try SPNEGO.responseToken(bytes))
    }
}

/// The part of SPNEGO's NegTokenResp an NTLM reader needs.
enum SPNEGO {
    /// NegTokenResp ::= [1] SEQUENCE { negState [0] ENUMERATED OPTIONAL, supportedMech [1] OID
    /// OPTIONAL, responseToken [2] OCTET STRING OPTIONAL, mechListMIC [3] OCTET STRING OPTIONAL }.
    static func responseToken(_ bytes: [UInt8]) throws(NTLMChallengeError) -> [UInt8] {
        var outer = DER.Reader(bytes[...])
        guard let (tag, body) = outer.next(), tag == 0xa1, outer.isAtEnd else {
            throw .invalidSPNEGO("not a NegTokenResp")
        }
        var wrapper = DER.Reader(body)
        guard let (seqTag, sequence) = wrapper.next(), seqTag == 0x30, wrapper.isAtEnd else {
            throw .invalidSPNEGO("the NegTokenResp is not a SEQUENCE")
        }
        var fields = DER.Reader(sequence)
        var token: [UInt8]?
        var lastTag: UInt8 = 0
        while !fields.isAtEnd {
            guard let (fieldTag, value) = fields.next(), fieldTag > lastTag, (0xa0...0xa3).contains(fieldTag) else {
                throw .invalidSPNEGO("malformed NegTokenResp fields")
            }
            lastTag = fieldTag
            var inner = DER.Reader(value)
            guard let (innerTag, content) = inner.next(), inner.isAtEnd else { throw .invalidSPNEGO("malformed NegTokenResp field") }
            switch fieldTag {
            case 0xa0:
                guard innerTag == 0x0a, content.count == 1 else { throw .invalidSPNEGO("malformed negState") }
                // reject (2): the server wants none of the offered mechanisms.
                if content.first == 2 { throw .invalidSPNEGO("the server rejected NTLM (negState reject)") }
            case 0xa1:
                guard innerTag == 0x06 else { throw .invalidSPNEGO("malformed supportedMech") }
                guard content.elementsEqual(NTLMNegotiate.ntlmOID) else { throw .invalidSPNEGO("the server chose a mechanism other than NTLM") }
            case 0xa2:
                guard innerTag == 0x04 else { throw .invalidSPNEGO("malformed responseToken") }
                token = Array(content)
            default:
                break // mechListMIC
            }
        }
        guard let token else { throw .invalidSPNEGO("no responseToken") }
        return token
    }
}

/// Just enough DER for SPNEGO: one-byte tags, definite lengths up to 4 bytes.
enum DER {
    static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        let n = content.count
        let length: [UInt8] =
            n < 0x80 ? [UInt8(n)] : n <= 0xff ? [0x81, UInt8(n)] : [0x82, UInt8(n >> 8), UInt8(n & 0xff)]
        return [tag] + length + content
    }

    struct Reader {
        var rest: ArraySlice<UInt8>
        init(_ bytes: ArraySlice<UInt8>) { rest = bytes }
        var isAtEnd: Bool { rest.isEmpty }

        /// The next element's tag and content, or nil when it is malformed or runs past the end.
        mutating func next() -> (UInt8, ArraySlice<UInt8>)? {
            guard rest.count >= 2 else { return nil }
            let tag = rest[rest.startIndex]
            var at = rest.startIndex + 1
            var length = Int(rest[at])
            at += 1
            if length & 0x80 != 0 {
                let count = length & 0x7f
                // 0x80 is BER's indefinite length, not DER.
                guard (1...4).contains(count), rest.endIndex - at >= count else { return nil }
                length = 0
                for _ in 0..<count {
                    length = length << 8 | Int(rest[at])
                    at += 1
                }
            }
            guard rest.endIndex - at >= length else { return nil }
            let content = rest[at..<(at + length)]
            rest = rest[(at + length)...]
            return (tag, content)
        }
    }
}
