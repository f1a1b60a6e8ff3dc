/// One try during Autodiscover: which URL (or DNS name), how, what came of it, how long.
public struct AutodiscoverAttempt: Sendable, Equatable, JSONRepresentable {
    public var url: String
    /// POST (authenticated, https only), GET (the unauthenticated http redirect probe) or SRV.
    public var method: String
    /// A stable word: settings, redirectAddr, redirectUrl, httpRedirect, unauthorized, httpStatus,
    /// timeout, unreachable, certificateUntrusted, invalidResponse, tooLarge, rejected,
    /// autodiscoverError, noRecords, records, abandoned.
    public var outcome: String
    public var detail: String
    public var durationMs: Int

    public init(url: String, method: String, outcome: String, detail: String, durationMs: Int) {
        self.url = url
        self.method = method
        self.outcome = outcome
        self.detail = detail
        self.durationMs = durationMs
    }

    public var json: JSONValue {
        ["url": .string(url), "method": .string(method), "outcome": .string(outcome),
         "detail": .string(detail), "durationMs": .int(durationMs)]
    }
}

public struct EndpointsResult: Sendable, JSONRepresentable {
    public var ewsUrl: String?
    public var oabUrl: String?
    public var endpointSource: EndpointSource?
    public var autodiscover: (ok: Bool, attempts: [AutodiscoverAttempt])?

    public init(ewsUrl: String?, oabUrl: String?, endpointSource: EndpointSource?,
                autodiscover: (ok: Bool, attempts: [AutodiscoverAttempt])? = nil) {
        self.ewsUrl = ewsUrl
        self.oabUrl = oabUrl
        self.endpointSource = endpointSource
        self.autodiscover = autodiscover
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.append("ewsUrl", ewsUrl.map(JSONValue.string) ?? .null)
        o.append("oabUrl", oabUrl.map(JSONValue.string) ?? .null)
        o.append("endpointSource", endpointSource.map { .string($0.rawValue) } ?? .null)
        if let autodiscover {
            o.append("autodiscover", ["ok": .bool(autodiscover.ok), "attempts": autodiscover.attempts.json])
        }
        return .object(o)
    }
}

/// Saves the Exchange account (the password only in the keyring), then runs Autodiscover
/// unless `autodiscover` is false.
public enum SubmitExchangeCredentials: RPCMethod {
    public static let name = "submitExchangeCredentials"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["profileId", "userName", "domain", "email", "password", "autodiscover",
                                            "allowRedirectHosts", "impersonateMailbox"]
        public var profileId: String
        public var userName: String
        public var domain: String?
        public var email: String
        public var password: String
        public var autodiscover: Bool
        public var allowRedirectHosts: [String]
        public var impersonateMailbox: String?

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            profileId = try reader.profileId()
            userName = try reader.requiredNonEmptyString("userName", maxLength: 256).trimmed
            let domain = try reader.optionalString("domain", maxLength: 256)?.trimmed
            self.domain = domain?.isEmpty == false ? domain : nil
            email = try reader.requiredNonEmptyString("email", maxLength: 320).trimmed
            password = try reader.requiredString("password", maxLength: 1024)
            autodiscover = try reader.optionalBool("autodiscover") ?? true
            allowRedirectHosts = (try reader.optionalStringArray("allowRedirectHosts", maxCount: 20) ?? []).map { $0.lowercased() }
            impersonateMailbox = try reader.optionalString("impersonateMailbox", maxLength: 320)?.trimmed
            if impersonateMailbox?.isEmpty == true { impersonateMailbox = nil }

            guard EmailAddress.domain(of: email) != nil else {
                throw .invalidParams(field: "email", "'email' must be an e-mail address like alice@contoso.com.")
            }
            if let impersonateMailbox, EmailAddress.domain(of: impersonateMailbox) == nil {
                throw .invalidParams(field: "impersonateMailbox", "'impersonateMailbox' must be an e-mail address.")
            }
            guard !password.isEmpty else {
                throw .invalidParams(field: "password", "'password' must not be empty.")
            }
            if userName.contains("\\") {
                throw .invalidParams(field: "userName", "Enter the user name without the domain; put the domain in 'domain' (for DOMAIN\\alice: userName 'alice', domain 'DOMAIN').")
            }
            if let domain = self.domain, domain.contains("\\") || domain.contains("/") || domain.contains("@") {
                throw .invalidParams(field: "domain", "'domain' is the Windows domain name, like CONTOSO or contoso.local.")
            }
            for host in allowRedirectHosts where !Hostname.isPlausible(host) {
                throw .invalidParams(field: "allowRedirectHosts", "'\(host.clipped(toBytes: 64))' is not a host name.")
            }
        }
    }

    public typealias Result = EndpointsResult
}

/// Sets the EWS (and optionally OAB) URL by hand, for when Autodiscover cannot find them.
public enum OverrideEndpoints: RPCMethod {
    public static let name = "overrideEndpoints"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["profileId", "ewsUrl", "oabUrl"]
        public var profileId: String
        public var ewsUrl: String
        public var oabUrl: String?

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            profileId = try reader.profileId()
            ewsUrl = try reader.requiredNonEmptyString("ewsUrl", maxLength: 2048).trimmed
            oabUrl = try reader.optionalString("oabUrl", maxLength: 2048)?.trimmed
            if oabUrl?.isEmpty == true { oabUrl = nil }
            try HTTPSURL.validate(ewsUrl, field: "ewsUrl")
            if let oabUrl { try HTTPSURL.validate(oabUrl, field: "oabUrl") }
        }
    }

    public typealias Result = EndpointsResult
}

/// Pins a certificate the user has looked at and trusts, for one host in one profile.
public enum TrustCertificate: RPCMethod {
    public static let name = "trustCertificate"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["profileId", "host", "sha256"]
        public var profileId: String
        public var host: String
        public var sha256: String

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            profileId = try reader.profileId()
            host = try reader.requiredNonEmptyString("host", maxLength: 253).lowercased()
            let raw = try reader.requiredNonEmptyString("sha256", maxLength: 128)
            sha256 = raw.lowercased().filter { $0 != ":" }
            guard Hostname.isPlausible(host) else {
                throw .invalidParams(field: "host", "'host' must be a host name like mail.contoso.com.")
            }
            guard sha256.count == 64, sha256.allSatisfy({ $0.isHexDigit }) else {
                throw .invalidParams(field: "sha256", "'sha256' must be the certificate's SHA-256 fingerprint: 64 hex digits, as certificateUntrusted reported it.")
            }
        }
    }

    public struct Result: JSONRepresentable {
        public init() {}
        public var json: JSONValue { ["trusted": true] }
    }
}

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
            throw RPCError(.endpointInvalid, "'\(field)' must be an absolute https URL, like https://mail.contoso.com/EWS/Exchange.asmx.",
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
