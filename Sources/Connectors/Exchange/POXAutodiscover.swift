import XMLTree

/// What one Autodiscover POX answer says.
public enum POXAnswer: Equatable, Sendable {
    case settings(ewsUrl: String, oabUrl: String?)
    case redirectAddr(String)
    case redirectUrl(String)
    case error(code: String, message: String)
}

public enum POX {
    static let requestNamespace = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
    static let responseSchema = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"

    static func requestBody(email: String) -> [UInt8] {
        Array(
            """
            <?xml version="1.0" encoding="utf-8"?>
            <Autodiscover xmlns="\(requestNamespace)">
              <Request>
                <EMailAddress>\(xmlEscaped(email))</EMailAddress>
                <AcceptableResponseSchema>\(responseSchema)</AcceptableResponseSchema>
              </Request>
            </Autodiscover>
            """.utf8)
    }

    public enum ParseFailure: Error, Equatable {
        case invalidXML(String)
        case unexpected(String)
    }

    /// Reads the Outlook response schema. Prefers EXPR (how a client outside the LAN reaches
    /// Exchange) over EXCH, and EwsUrl over ASUrl; ignores URLs that are not https.
    public static func parse(_ body: [UInt8]) -> Result<POXAnswer, ParseFailure> {
        let root: XMLElement
        do {
            root = try XMLTreeParser.parse(body)
        } catch {
            return .failure(.invalidXML(error.description))
        }
        guard root.name == "Autodiscover", let response = root.child("Response") else {
            return .failure(.unexpected("not an Autodiscover answer (root element <\(root.name)>)"))
        }
        if let error = response.child("Error") {
            return .success(.error(code: error.child("ErrorCode")?.text ?? "?", message: error.child("Message")?.text ?? ""))
        }
        guard let account = response.child("Account") else {
            return .failure(.unexpected("the answer has no Account element"))
        }
        switch account.child("Action")?.text ?? "settings" {
        case "redirectAddr":
            guard let address = account.child("RedirectAddr")?.text, !address.isEmpty else {
                return .failure(.unexpected("redirectAddr without an address"))
            }
            return .success(.redirectAddr(address))
        case "redirectUrl":
            guard let url = account.child("RedirectUrl")?.text, !url.isEmpty else {
                return .failure(.unexpected("redirectUrl without a URL"))
            }
            return .success(.redirectUrl(url))
        default:
            let protocols = account.children("Protocol")
            for type in ["EXPR", "EXCH"] {
                for p in protocols where p.child("Type")?.text == type || p.attributes["Type"] == type {
                    let ews = [p.child("EwsUrl")?.text, p.child("ASUrl")?.text].compactMap { $0 }.first { $0.lowercased().hasPrefix("https://") }
                    if let ews {
                        let oab = p.child("OABUrl").map(\.text).flatMap { (url: String) -> String? in url.lowercased().hasPrefix("https://") ? url : nil }
                        return .success(.settings(ewsUrl: ews, oabUrl: oab))
                    }
                }
            }
            return .failure(.unexpected("the answer names no https EWS URL (no EXPR or EXCH protocol with EwsUrl or ASUrl)"))
        }
    }
}
