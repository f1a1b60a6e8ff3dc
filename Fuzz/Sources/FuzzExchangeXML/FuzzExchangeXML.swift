// Fuzz target (b): what an Exchange server (or anything posing as one) answers: Autodiscover POX
// and EWS GetFolder SOAP, through XMLTreeParser, POX.parse and EWS.interpretGetFolder.
//
// The input is the HTTP response body; its first byte (even: 200, odd: 500) picks the status.
// Any broken invariant is a fatalError, which libFuzzer reports as a crash.

import EWS
import ExchangeConnector
import FuzzSupport
import HTTP // HTTPResponse (HTTP is built as a dependency of ExchangeConnector; not in the product)
import RPCCore
import WizardContract
import XMLTree

/// A password that must never show up in anything built from a server's answer.
let canaryPassword = "Canary-Pw-7f3e9b21-do-not-leak"

let account = ExchangeAccount(userName: "alice", domain: "CONTOSO", email: "alice@contoso.test", password: canaryPassword)
let impersonating = ExchangeAccount(
    userName: "svc-sync", domain: nil, email: "svc-sync@contoso.test", password: canaryPassword,
    impersonateMailbox: "bob@contoso.test")

// MARK: - Tree checks

func depth(_ element: XMLElement) -> Int {
    1 + (element.children.map(depth).max() ?? 0)
}

func isXMLTrimmed(_ s: String) -> Bool {
    !(s.first?.isWhitespace ?? false) && !(s.last?.isWhitespace ?? false)
}

func trimmedLikeTheParser(_ s: String) -> String {
    var t = s[...]
    while let f = t.first, f.isWhitespace { t = t.dropFirst() }
    while let l = t.last, l.isWhitespace { t = t.dropLast() }
    return String(t)
}

func checkTree(_ element: XMLElement, level: Int = 1) {
    invariant(level <= XMLTreeParser.maximumDepth, "an element at depth \(level) (limit \(XMLTreeParser.maximumDepth))")
    invariant(isXMLTrimmed(element.text), "element text not trimmed: \(escaped(element.text))")
    for child in element.children { checkTree(child, level: level + 1) }
}

/// Writes a tree back as XML when it is simple enough to do so unambiguously (names that are
/// plain NCNames, no attribute named xmlns); nil otherwise. Every element declares its own
/// default namespace, so prefixes do not matter.
func serialize(_ element: XMLElement, into out: inout String) -> Bool {
    func plainName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !name.contains(":"), first != UInt8(ascii: "-"), first != UInt8(ascii: "."),
            !(0x30...0x39).contains(first)
        else { return false }
        return name.utf8.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2D || $0 == 0x2E
        }
    }
    guard plainName(element.name) else { return false }
    out += "<" + element.name + " xmlns=\"" + xmlEscaped(element.namespace) + "\""
    for (name, value) in element.attributes.sorted(by: { $0.key < $1.key }) {
        guard plainName(name), name != "xmlns" else { return false }
        out += " " + name + "=\"" + xmlEscaped(value) + "\""
    }
    out += ">" + xmlEscaped(element.text)
    for child in element.children {
        guard serialize(child, into: &out) else { return false }
    }
    out += "</" + element.name + ">"
    return true
}

// MARK: - Entry point

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzExchangeXML(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let body = Array(UnsafeBufferPointer(start: data, count: size))
    let status = body[0] & 1 == 0 ? 200 : 500

    // The tree.
    let tree: XMLElement?
    do {
        let root = try XMLTreeParser.parse(body)
        checkTree(root)
        tree = root
    } catch {
        invariant(error.offset >= 0 && error.offset <= body.count, "XMLParseError offset \(error.offset) outside the input")
        tree = nil
    }
    if let text = String(validating: body, as: UTF8.self) {
        // The String entry point agrees with the bytes one.
        invariant((try? XMLTreeParser.parse(text)) == tree, "XMLTreeParser.parse(String) differs from parse(bytes)")
    }
    if let tree {
        // What we can write back parses to the same tree.
        var xml = ""
        if serialize(tree, into: &xml) {
            do {
                let again = try XMLTreeParser.parse(xml)
                invariant(again == tree, "re-serialized tree parses differently: \(escaped(xml))")
            } catch {
                violated("re-serialized tree does not parse (\(error)): \(escaped(xml))")
            }
        }
    }

    // xmlEscaped (how requests embed the e-mail address and the impersonated mailbox) must make
    // any text safe: it parses back to itself as element content and as an attribute value, and
    // the GetFolder request built around an impersonated mailbox stays the same document.
    do {
        let asText = String(decoding: body, as: UTF8.self)
        do {
            let element = try XMLTreeParser.parse("<a>" + xmlEscaped(asText) + "</a>")
            invariant(
                element.children.isEmpty && element.text == trimmedLikeTheParser(asText),
                "xmlEscaped text does not parse back to itself: \(escaped(xmlEscaped(asText)))")
            let attribute = try XMLTreeParser.parse("<a v=\"" + xmlEscaped(asText) + "\"/>")
            invariant(attribute.attributes["v"] == asText, "xmlEscaped attribute does not parse back to itself: \(escaped(xmlEscaped(asText)))")
        } catch {
            violated("xmlEscaped output is not well-formed XML (\(error)): \(escaped(xmlEscaped(asText)))")
        }
        let request = EWS.getFolderBody(impersonate: asText)
        do {
            let envelope = try XMLTreeParser.parse(request)
            let address = envelope.path("Header", "ExchangeImpersonation", "ConnectingSID", "PrimarySmtpAddress")
            invariant(
                address?.children.isEmpty == true && address?.text == trimmedLikeTheParser(asText),
                "the GetFolder request carries another mailbox than was given: \(escaped(request))")
            invariant(
                envelope.path("Body", "GetFolder", "FolderIds", "DistinguishedFolderId")?.attributes["Id"] == "calendar",
                "the GetFolder request no longer asks for the calendar: \(escaped(request))")
        } catch {
            violated("the GetFolder request for mailbox \(escaped(asText)) is not well-formed XML (\(error))")
        }
    }

    // Autodiscover POX.
    switch POX.parse(body) {
    case .success(.settings(let ewsUrl, let oabUrl)):
        invariant(tree != nil, "POX settings from unparseable XML")
        invariant(ewsUrl.lowercased().hasPrefix("https://"), "POX accepted a non-https EWS URL \(escaped(ewsUrl))")
        if let oabUrl { invariant(oabUrl.lowercased().hasPrefix("https://"), "POX accepted a non-https OAB URL \(escaped(oabUrl))") }
    case .success(.redirectAddr(let address)):
        invariant(tree != nil && !address.isEmpty, "POX redirectAddr")
    case .success(.redirectUrl(let url)):
        invariant(tree != nil && !url.isEmpty, "POX redirectUrl")
    case .success(.error):
        invariant(tree != nil, "POX error from unparseable XML")
    case .failure(.invalidXML):
        invariant(tree == nil, "POX says invalid XML, XMLTreeParser parsed it")
    case .failure(.unexpected(let why)):
        invariant(tree != nil && !why.isEmpty, "POX unexpected")
    }

    // EWS GetFolder, without and with impersonation.
    let response = HTTPResponse(
        status: status, headers: [:], body: body,
        effectiveURL: "https://mail.contoso.test/EWS/Exchange.asmx", durationMs: 0)
    for who in [account, impersonating] {
        do {
            let message = try EWS.interpretGetFolder(
                response, mailbox: who.email, impersonating: who.impersonateMailbox, credentialsHint: "Check the user name and domain.")
            invariant(tree?.name == "Envelope", "GetFolder success without a SOAP envelope")
            invariant(message.hasPrefix("The calendar is reachable") && message.hasSuffix("."), "GetFolder success message: \(escaped(message))")
            if let mailbox = who.impersonateMailbox { invariant(message.contains(mailbox), "success without the impersonated mailbox") }
            invariant(!message.contains(canaryPassword), "the password appears in the GetFolder result")
        } catch {
            JSONChecks.checkError(error, "GetFolder error", maximumMessageBytes: nil)
            let allowed: [ErrorKind] = [.serverError, .endpointInvalid, .mailboxNotFound, .impersonationDenied, .accessDenied, .invalidCredentials]
            invariant(allowed.contains(error.kind), "GetFolder error of kind \(error.kind.name)")
            if tree == nil {
                invariant(error.kind == (status >= 500 ? .serverError : .endpointInvalid), "GetFolder on invalid XML with \(status): \(error.kind.name)")
            }
            let wire = JSONWriter.string(error.json)
            invariant(
                !wire.contains(canaryPassword) && !error.message.contains(canaryPassword) && !(error.hint ?? "").contains(canaryPassword),
                "the password appears in a GetFolder error")
        }
    }
    return 0
}
