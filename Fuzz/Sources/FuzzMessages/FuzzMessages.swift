// Fuzz target (a): the bytes a client sends, through framing, decoding and dispatch.
//
// The input is the raw stdin byte stream (NDJSON lines and/or Content-Length messages). It is
// framed three ways (all at once, split in two, in small chunks) and the events must agree; every
// message is decoded like the server decodes it, its params go through every method's
// Params.decode, and every reply the server would send is serialized and parsed back.
// Any broken invariant is a fatalError, which libFuzzer reports as a crash.

import FuzzSupport
import JSONRPC
import OAuth
import RPCCore
import WizardContract

// MARK: - Methods, as the server's table decodes them

/// One entry of the method table: decodes params exactly as the server does and returns what a
/// handler would answer (the params echoed), or the decoding error.
struct MethodEntry: Sendable {
    let name: String
    let decode: @Sendable (JSONValue?) -> Result<JSONValue, RPCError>
}

/// Decodes with `decoder` and checks what every RPCParams promises: the same answer twice and
/// for the params re-serialized and re-parsed; errors are invalidParams (or endpointInvalid for
/// URLs) naming a field; success means no unknown member (unless lenient).
func entry<P: RPCParams & Equatable>(
    _ name: String, _ type: P.Type, lenient: Bool = false,
    check: @escaping @Sendable (P) -> Void = { _ in },
    decoder: @escaping @Sendable (JSONValue?) throws(RPCError) -> P = { (params) throws(RPCError) -> P in try P.decode(params) }
) -> MethodEntry {
    MethodEntry(name: name) { params in
        func once(_ params: JSONValue?) -> Result<P, RPCError> {
            do throws(RPCError) { return .success(try decoder(params)) } catch { return .failure(error) }
        }
        let result = once(params)
        invariant(once(params) == result, "\(name): decoding the same params twice differs")
        if let params {
            let bytes = JSONChecks.roundTrip(params, "\(name) params")
            let reparsed = try! JSONParser.parse(bytes, maximumDepth: JSONChecks.reparseDepth)
            invariant(once(reparsed) == result, "\(name): decoding re-serialized params differs: \(escaped(bytes))")
        }
        switch result {
        case .success(let decoded):
            check(decoded)
            if !lenient, case .object(let object)? = params {
                for key in object.keys {
                    invariant(P.parameterNames.contains(key), "\(name): accepted the unknown parameter \(escaped(key))")
                }
            }
            if case .array(let items)? = params {
                invariant(items.isEmpty, "\(name): accepted positional params")
            }
            return .success(params ?? .null)
        case .failure(let error):
            JSONChecks.checkError(error, "\(name) params error")
            invariant(
                error.kind == .invalidParams || error.kind == .endpointInvalid,
                "\(name): params error of kind \(error.kind.name): \(error.message)")
            guard let field = error.details["field"]?.stringValue else {
                violated("\(name): params error without data.field: \(error.message)")
            }
            var known = Set(P.parameterNames)
            known.insert("params")
            var sent: [String] = []
            if case .object(let object)? = params { sent = object.keys }
            // An unknown member is named in full, or clipped to its first bytes when long.
            invariant(
                known.contains(field) || sent.contains { $0 == field || ($0.utf8.starts(with: field.utf8) && field.utf8.count >= 256) },
                "\(name): params error names the field \(escaped(field)), which is neither a parameter nor sent")
            return .failure(error)
        }
    }
}

func checkProfileID(_ id: String, _ name: String) {
    invariant(ProfileID.isWellFormed(id) && id.utf8.count == 36, "\(name): accepted the profile id \(escaped(id))")
}

func isTrimmed(_ s: String) -> Bool {
    !(s.first?.isWhitespace ?? false) && !(s.last?.isWhitespace ?? false)
}

let methods: [MethodEntry] = [
    entry(
        Initialize.name, Initialize.Params.self, lenient: true,
        check: { p in invariant((p.protocolVersion?.utf8.count ?? 0) <= 64, "initialize: protocolVersion longer than 64 bytes") },
        decoder: { (params) throws(RPCError) in try Initialize.Params.decodeLeniently(params) }),
    entry(Ping.name, NoParams.self),
    entry(Discover.name, NoParams.self),
    entry(Shutdown.name, NoParams.self),
    entry(ListProfiles.name, NoParams.self),
    entry(CreateProfile.name, CreateProfile.Params.self) { p in
        invariant(p.name.utf8.count <= CreateProfile.maximumNameLength, "createProfile: name longer than the maximum")
        invariant(p.name.contains { !$0.isWhitespace }, "createProfile: blank name accepted")
        invariant(!p.name.unicodeScalars.contains { $0.properties.generalCategory == .control }, "createProfile: control character in the name")
    },
    entry(GetProfile.name, ProfileIDParams.self) { checkProfileID($0.profileId, GetProfile.name) },
    entry(DeleteProfile.name, ProfileIDParams.self) { checkProfileID($0.profileId, DeleteProfile.name) },
    entry(GetWizardState.name, ProfileIDParams.self) { checkProfileID($0.profileId, GetWizardState.name) },
    entry(NextStep.name, ProfileIDParams.self) { checkProfileID($0.profileId, NextStep.name) },
    entry(SelectCalendarSystem.name, SelectCalendarSystem.Params.self) { checkProfileID($0.profileId, SelectCalendarSystem.name) },
    entry(SetProviderSettings.name, SetProviderSettings.Params.self) { p in
        invariant(p.environment == nil || p.system == .superOffice, "setProviderSettings: environment for \(p.system)")
        invariant(p.tenant == nil || p.system == .microsoft365, "setProviderSettings: tenant for \(p.system)")
        if let tenant = p.tenant {
            invariant(!tenant.isEmpty && tenant.utf8.allSatisfy { $0 < 0x80 }, "setProviderSettings: tenant \(escaped(tenant)) is not ASCII")
        }
        invariant(p.clientId.contains { !$0.isWhitespace } && p.clientId.utf8.count <= 512, "setProviderSettings: clientId")
    },
    entry(GetProviderSettings.name, GetProviderSettings.Params.self),
    entry(SubmitExchangeCredentials.name, SubmitExchangeCredentials.Params.self) { p in
        checkProfileID(p.profileId, SubmitExchangeCredentials.name)
        invariant(!p.userName.isEmpty && isTrimmed(p.userName) && !p.userName.contains("\\"), "submitExchangeCredentials: userName \(escaped(p.userName))")
        invariant(EmailAddress.domain(of: p.email) != nil && isTrimmed(p.email), "submitExchangeCredentials: email \(escaped(p.email))")
        invariant(!p.password.isEmpty, "submitExchangeCredentials: empty password accepted")
        if let domain = p.domain { invariant(!domain.isEmpty && isTrimmed(domain), "submitExchangeCredentials: domain \(escaped(domain))") }
        if let mailbox = p.impersonateMailbox { invariant(EmailAddress.domain(of: mailbox) != nil, "submitExchangeCredentials: impersonateMailbox") }
        for host in p.allowRedirectHosts {
            invariant(Hostname.isPlausible(host) && host == host.lowercased(), "submitExchangeCredentials: redirect host \(escaped(host))")
        }
    },
    entry(OverrideEndpoints.name, OverrideEndpoints.Params.self) { p in
        checkProfileID(p.profileId, OverrideEndpoints.name)
        for url in [p.ewsUrl] + (p.oabUrl.map { [$0] } ?? []) {
            invariant(HTTPSURL.host(of: url) != nil && !url.contains { $0.isWhitespace }, "overrideEndpoints: accepted \(escaped(url))")
            invariant(url.utf8.prefix(8).map { $0 | 0x20 } == Array("https://".utf8), "overrideEndpoints: not https: \(escaped(url))")
        }
    },
    entry(TrustCertificate.name, TrustCertificate.Params.self) { p in
        checkProfileID(p.profileId, TrustCertificate.name)
        invariant(Hostname.isPlausible(p.host), "trustCertificate: host \(escaped(p.host))")
        // A SHA-256 fingerprint is 64 lowercase ASCII hex digits; anything else can never match.
        invariant(
            p.sha256.utf8.count == 64 && p.sha256.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) },
            "trustCertificate: accepted the fingerprint \(escaped(p.sha256))")
    },
    entry(TestConnection.name, TestConnection.Params.self) { checkProfileID($0.profileId, TestConnection.name) },
    entry(StartSignIn.name, StartSignIn.Params.self) { p in
        checkProfileID(p.profileId, StartSignIn.name)
        invariant(!p.adminConsent || p.system == .microsoft365, "startSignIn: adminConsent for \(p.system)")
        invariant(p.flow == .browser || p.system == .microsoft365, "startSignIn: device code for \(p.system)")
    },
    entry(AwaitSignIn.name, AwaitSignIn.Params.self) { p in
        invariant(!p.signInId.isEmpty && p.signInId.utf8.count <= 128, "awaitSignIn: signInId")
        if let t = p.timeoutSeconds { invariant(t.isFinite && t >= 0 && t <= 3600, "awaitSignIn: timeout \(t)") }
    },
    entry(CompleteSignIn.name, CompleteSignIn.Params.self) { p in
        invariant(p.redirectUrl.utf8.count <= 16384, "completeSignIn: redirectUrl too long")
        // What the sign-in manager then does with the pasted URL.
        CallbackChecks.parse(p.redirectUrl)
    },
    entry(CancelSignIn.name, SignInIDParams.self),
    entry(SignOut.name, SignOut.Params.self) { checkProfileID($0.profileId, SignOut.name) },
    entry(CancelRequest.name, CancelRequest.Params.self) { p in
        switch p.id {
        case .string, .number: break
        default: violated("$/cancelRequest: accepted the id \(escaped(JSONWriter.bytes(p.id)))")
        }
    },
    entry(Exit.name, NoParams.self),
]

/// Requests by name; the two notifications are not callable as requests (methodNotFound).
let requestTable: [String: MethodEntry] = Dictionary(
    methods.filter { $0.name != CancelRequest.name && $0.name != Exit.name }.map { ($0.name, $0) },
    uniquingKeysWith: { first, _ in first })
let cancelRequest = methods.first { $0.name == CancelRequest.name }!

// MARK: - Dispatch, as JSONRPC.Server does it

func checkID(_ id: JSONValue, _ what: String) {
    switch id {
    case .string, .number, .null: break
    default: violated("\(what): id of type \(id.typeName)")
    }
}

func reply(id: JSONValue, error: RPCError, _ what: String) {
    JSONChecks.checkError(error, what)
    let bytes = ResponseEncoder.error(id: id, error)
    let value = JSONChecks.checkResponse(bytes, id: id, what)
    invariant(value["error"] == error.json, "\(what): error member differs from RPCError.json")
}

func reply(id: JSONValue, result: JSONValue, _ what: String) {
    let bytes = ResponseEncoder.result(id: id, result)
    let value = JSONChecks.checkResponse(bytes, id: id, what)
    invariant(value["result"] == result, "\(what): result member differs")
}

func handle(_ message: IncomingMessage) {
    switch message {
    case .invalid(let id, let error):
        checkID(id, "invalid message")
        invariant(error.kind == .invalidRequest, "an invalid message answered with \(error.kind.name)")
        reply(id: id, error: error, "invalid message")

    case .request(let id, let method, let params):
        checkID(id, "request")
        checkParamsShape(params, method)
        // What the server answers.
        if method == Shutdown.name {
            reply(id: id, result: .null, "shutdown")
        } else if let entry = requestTable[method] {
            switch entry.decode(params) {
            case .success(let result): reply(id: id, result: result, method)
            case .failure(let error): reply(id: id, error: error, method)
            }
        } else {
            // As JSONRPC.Server quotes it.
            let error = RPCError.methodNotFound(method.clipped(toBytes: 128))
            invariant(error.kind == .methodNotFound, "methodNotFound kind")
            reply(id: id, error: error, "methodNotFound")
        }
        decodeWithEveryMethod(params, except: method)

    case .notification(let method, let params):
        checkParamsShape(params, method)
        if method == CancelRequest.name, case .success(let decoded) = cancelRequest.decode(params), let id = decoded["id"] {
            // The cancelled request is answered with -32800 and its id.
            reply(id: id, error: .cancelled, "cancelled")
        }
        decodeWithEveryMethod(params, except: method)
    }
}

func checkParamsShape(_ params: JSONValue?, _ method: String) {
    switch params {
    case nil, .object?, .array?, .null?: break
    case let other?: violated("\(escaped(method)): params of type \(other.typeName) passed the decoder")
    }
}

func decodeWithEveryMethod(_ params: JSONValue?, except name: String) {
    for entry in methods where entry.name != name {
        _ = entry.decode(params)
    }
}

func decodeMessage(_ bytes: [UInt8]) {
    let decoded = MessageDecoder.decode(bytes)
    let parsed: JSONValue?
    do {
        parsed = try JSONParser.parse(bytes)
    } catch {
        parsed = nil
    }
    if let parsed {
        JSONChecks.roundTrip(parsed, "incoming message")
        invariant(MessageDecoder.classify(parsed) == decoded, "decode differs from parse + classify")
    }
    switch decoded {
    case .unanswerable(let error):
        if parsed == nil {
            invariant(error.kind == .parseError, "invalid JSON answered with \(error.kind.name)")
        } else {
            invariant(parsed == .array([]) && error.kind == .invalidRequest, "valid JSON answered as unanswerable: \(error.message)")
        }
        reply(id: .null, error: error, "unanswerable")
    case .single(let message):
        invariant(parsed != nil, "a message decoded from invalid JSON")
        handle(message)
    case .batch(let messages):
        invariant(parsed?.arrayValue?.count == messages.count && !messages.isEmpty, "batch size")
        for message in messages { handle(message) }
    }
}

// MARK: - Framing

func frame(_ input: [UInt8], limit: Int, cuts: [Int]) -> [FrameEvent] {
    var parser = FrameParser(maximumMessageBytes: limit)
    var events: [FrameEvent] = []
    var start = 0
    for cut in cuts + [input.count] where cut >= start {
        events += parser.feed(Array(input[start..<cut]))
        // Bytes held for an incomplete message stay bounded by the limits.
        invariant(
            parser.bufferedByteCount <= max(limit, 8192) + 8,
            "FrameParser holds \(parser.bufferedByteCount) bytes with a limit of \(limit)")
        start = cut
    }
    events += parser.finish()
    invariant(parser.bufferedByteCount == 0, "FrameParser holds bytes after finish()")
    return events
}

func describe(_ events: [FrameEvent]) -> String {
    events.map { event -> String in
        switch event {
        case .message(let bytes, let framing): "message(\(framing), \(escaped(bytes, limit: 80)))"
        case .tooLarge(let framing, let declared): "tooLarge(\(framing), \(declared.map(String.init) ?? "nil"))"
        case .badHeader(let problem): "badHeader(\(problem))"
        case .truncated(let framing): "truncated(\(framing))"
        }
    }.joined(separator: ", ")
}

/// Framings every client may use for a message (LSP base protocol: headers separated by CRLF,
/// Content-Type optional and in any order; NDJSON with LF or CRLF). Each must give back exactly
/// that message (or tooLarge when it exceeds the limit).
func reframings(_ body: [UInt8]) -> [(name: String, bytes: [UInt8], framing: Framing)] {
    let n = body.count
    var out: [(String, [UInt8], Framing)] = [
        ("Content-Length only, CRLF", Array("Content-Length: \(n)\r\n\r\n".utf8) + body, .contentLength),
        ("Content-Length only, LF", Array("content-length:\(n)\n\n".utf8) + body, .contentLength),
        (
            "Content-Length + Content-Type, CRLF", Array("Content-Length: \(n)\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n".utf8) + body,
            .contentLength
        ),
        (
            "Content-Type + Content-Length, CRLF", Array("Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: \(n)\r\n\r\n".utf8) + body,
            .contentLength
        ),
    ]
    let ws: [UInt8] = [0x20, 0x09, 0x0A, 0x0D]
    let looksLikeHeader = body.prefix(8).map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 } == Array("content-".utf8)
    if let first = body.first, let last = body.last, !ws.contains(first), !ws.contains(last), !looksLikeHeader,
        !body.contains(0x0A), !body.contains(0x0D)
    {
        out.append(("NDJSON, LF", body + [0x0A], .ndjson))
        out.append(("NDJSON, CRLF", body + [0x0D, 0x0A], .ndjson))
    }
    return out
}

func checkReframing(_ body: [UInt8], limit: Int) {
    for (name, bytes, framing) in reframings(body) {
        var parser = FrameParser(maximumMessageBytes: limit)
        let events = parser.feed(bytes) + parser.finish()
        let expected: [FrameEvent] =
            body.count > limit
            ? [.tooLarge(framing, declaredLength: framing == .contentLength ? body.count : nil)]
            : [.message(body, framing)]
        invariant(events == expected, "\(name) framing of a \(body.count)-byte message (limit \(limit)) gives [\(describe(events))]: \(escaped(bytes))")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMessages(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    // The first byte (also part of the stream) picks the split point, the chunk size and, when
    // its high bit is set, a small message limit so the too-large paths are reached too.
    let control = Int(input[0])
    let limit = control & 0x80 == 0 ? 1 << 20 : 64 + (control & 0x3F) * 8
    let split = control * input.count / 256
    let chunk = max(1 + control % 13, input.count / 256)

    let whole = frame(input, limit: limit, cuts: [])
    let halves = frame(input, limit: limit, cuts: [split])
    let chunks = frame(input, limit: limit, cuts: Array(stride(from: chunk, to: input.count, by: chunk)))
    invariant(whole == halves, "framing depends on how the input is split (at \(split)): whole [\(describe(whole))] vs split [\(describe(halves))]")
    invariant(whole == chunks, "framing depends on how the input is split (chunks of \(chunk)): whole [\(describe(whole))] vs chunks [\(describe(chunks))]")

    for event in whole {
        switch event {
        case .message(let bytes, .ndjson):
            invariant(!bytes.isEmpty && bytes.count <= limit, "ndjson message of \(bytes.count) bytes (limit \(limit))")
            invariant(!bytes.contains(0x0A), "ndjson message with a line feed")
            invariant(![0x20, 0x09, 0x0D, 0x0A].contains(bytes.first!) && ![0x20, 0x09, 0x0D].contains(bytes.last!), "ndjson message not trimmed")
            decodeMessage(bytes)
            if (try? JSONParser.parse(bytes)) != nil { checkReframing(bytes, limit: limit) }
        case .message(let bytes, .contentLength):
            invariant(bytes.count <= limit, "Content-Length message of \(bytes.count) bytes (limit \(limit))")
            decodeMessage(bytes)
            checkReframing(bytes, limit: limit)
        case .tooLarge(_, let declared):
            if let declared { invariant(declared > limit, "tooLarge with a declared length \(declared) within the limit \(limit)") }
            var error = RPCError(.messageTooLarge, "The message is larger than the limit of \(limit) bytes and was skipped.")
            error = error.with("limitBytes", .int(limit))
            if let declared { error = error.with("declaredBytes", .int(declared)) }
            reply(id: .null, error: error, "tooLarge")
        case .badHeader(let problem):
            reply(id: .null, error: RPCError(.invalidRequest, "Unusable message header: \(problem)"), "badHeader")
        case .truncated:
            reply(id: .null, error: RPCError(.parseError, "Input ended before the message was complete."), "truncated")
        }
    }
    return 0
}
