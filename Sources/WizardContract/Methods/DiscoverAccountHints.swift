import RPCCore

/// What the Exchange server's NTLM challenge says about the account's domain, and what to
/// type in the wizard's User name and Domain fields (protocols.md §7.4). Also carried by
/// `invalidCredentials` errors as `data.accountHints`.
public struct AccountHints: Sendable, Equatable, JSONRepresentable {
    /// MsvAvNbDomainName, e.g. CONTOSO: what goes in the Domain field.
    public var netbiosDomain: String
    /// MsvAvDnsDomainName, e.g. corp.contoso.com: the suffix of the implicit UPN.
    public var dnsDomain: String?
    /// MsvAvDnsTreeName.
    public var forest: String?
    /// The server that answered: MsvAvDnsComputerName, else MsvAvNbComputerName.
    public var server: String?
    /// Sign-in names that the domain accepts for this mailbox's user, best first
    /// (`CONTOSO\alice`, `alice@corp.contoso.com`, the e-mail when its domain is the DNS domain).
    public var userNameForms: [String]
    /// The https URL whose challenge was read.
    public var probedUrl: String
    /// `ntlm` or `negotiate`: the WWW-Authenticate scheme that carried the challenge.
    public var scheme: String
    /// The recommended entry: User name and Domain fields (Domain nil: leave it blank).
    public var userNameField: String
    public var domainField: String?
    /// One sentence saying what to type.
    public var advice: String
    /// The Windows version of the server (NTLM Version field), like "10.0.17763".
    public var windowsVersion: String?
    /// Every endpoint asked, in order, with what came of it (url, method, outcome, detail, durationMs).
    public var attempts: [AutodiscoverAttempt]

    public init(
        netbiosDomain: String, dnsDomain: String?, forest: String?, server: String?, userNameForms: [String], probedUrl: String,
        scheme: String, userNameField: String, domainField: String?, advice: String, windowsVersion: String?,
        attempts: [AutodiscoverAttempt]
    ) {
        self.netbiosDomain = netbiosDomain
        self.dnsDomain = dnsDomain
        self.forest = forest
        self.server = server
        self.userNameForms = userNameForms
        self.probedUrl = probedUrl
        self.scheme = scheme
        self.userNameField = userNameField
        self.domainField = domainField
        self.advice = advice
        self.windowsVersion = windowsVersion
        self.attempts = attempts
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.append("netbiosDomain", .string(netbiosDomain))
        o.append("dnsDomain", dnsDomain.map(JSONValue.string) ?? .null)
        o.append("forest", forest.map(JSONValue.string) ?? .null)
        o.append("server", server.map(JSONValue.string) ?? .null)
        o.append("userNameForms", .array(userNameForms.map(JSONValue.string)))
        o.append("probedUrl", .string(probedUrl))
        o.append("scheme", .string(scheme))
        o.append("userNameField", .string(userNameField))
        o.append("domainField", domainField.map(JSONValue.string) ?? .null)
        o.append("advice", .string(advice))
        o.append("windowsVersion", windowsVersion.map(JSONValue.string) ?? .null)
        o.append("attempts", attempts.json)
        return .object(o)
    }
}

/// Reads the Windows domain from the NTLM challenge of the mailbox's Exchange server, without
/// any credential: the endpoint Autodiscover's rules allow, or `ewsUrl`.
public enum DiscoverAccountHints: RPCMethod {
    public static let name = "discoverAccountHints"

    public struct Params: RPCParams, Equatable {
        public static let parameterNames = ["email", "ewsUrl", "allowRedirectHosts", "profileId"]
        public var email: String
        public var ewsUrl: String?
        /// Hosts outside the e-mail domain that a redirect may lead to (as submitExchangeCredentials).
        public var allowRedirectHosts: [String]
        /// A profile whose trusted certificates (trustCertificate) apply.
        public var profileId: String?

        public init(reading reader: inout ParamsReader) throws(RPCError) {
            email = try reader.requiredNonEmptyString("email", maxLength: 320).trimmed
            ewsUrl = try reader.optionalString("ewsUrl", maxLength: 2048)?.trimmed
            if ewsUrl?.isEmpty == true { ewsUrl = nil }
            allowRedirectHosts = (try reader.optionalStringArray("allowRedirectHosts", maxCount: 20) ?? []).map { $0.lowercased() }
            profileId = try reader.optionalString("profileId", maxLength: 64)
            guard EmailAddress.domain(of: email) != nil else {
                throw .invalidParams(field: "email", "'email' must be an e-mail address like alice@contoso.com.")
            }
            if let ewsUrl { try HTTPSURL.validate(ewsUrl, field: "ewsUrl") }
            for host in allowRedirectHosts where !Hostname.isPlausible(host) {
                throw .invalidParams(field: "allowRedirectHosts", "'\(host.clipped(toBytes: 64))' is not a host name.")
            }
            if let profileId, !ProfileID.isWellFormed(profileId) {
                throw .invalidParams(field: "profileId", "'profileId' is not a profile id.")
            }
        }
    }

    public typealias Result = AccountHints
}
