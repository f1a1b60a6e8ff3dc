import RPCCore

/// Checks of values the contract takes (e-mail addresses, host names, https URLs), shared by
/// the params decoders and the connectors.
public enum EmailAddress {
    /// The lowercased domain of a plausible address, or nil.
    public static func domain(of address: String) -> String? {
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !address.contains(where: { $0.isWhitespace }) else { return nil }
        let domain = parts[1].lowercased()
        guard domain.contains("."), Hostname.isPlausible(domain) else { return nil }
        return domain
    }
}

public enum Hostname {
    public static func isPlausible(_ host: String) -> Bool {
        guard !host.isEmpty, host.utf8.count <= 253, !host.hasPrefix("."), !host.hasSuffix("."), !host.contains("..") else { return false }
        return host.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == ".") }
    }
}

/// Absolute https URLs with a host, the only kind syncwizard sends credentials to.
public enum HTTPSURL {
    /// The lowercased host of an https URL, or nil.
    public static func host(of url: String) -> String? {
        guard url.lowercased().hasPrefix("https://") else { return nil }
        let rest = url.dropFirst(8)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        var host = authority
        if let colon = authority.lastIndex(of: ":"), !authority.hasPrefix("[") {
            let port = authority[authority.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy(\.isNumber), Int(port).map({ (1...65535).contains($0) }) == true else { return nil }
            host = authority[..<colon]
        }
        let lower = host.lowercased()
        return Hostname.isPlausible(lower) ? lower : nil
    }

    public static func validate(_ url: String, field: String) throws(RPCError) {
        guard !url.contains(where: { $0.isWhitespace }), host(of: url) != nil else {
            throw RPCError(
                .endpointInvalid, "'\(field)' must be an absolute https URL, like https://mail.contoso.com/EWS/Exchange.asmx.",
                hint: "Credentials are only ever sent over https.",
                details: JSONObject([("field", .string(field))]))
        }
    }
}

extension String {
    var trimmed: String {
        var s = self[...]
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
