import RPCCore

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
        [
            "url": .string(url), "method": .string(method), "outcome": .string(outcome),
            "detail": .string(detail), "durationMs": .int(durationMs),
        ]
    }
}

public struct EndpointsResult: Sendable, JSONRepresentable {
    public var ewsUrl: String?
    public var oabUrl: String?
    public var endpointSource: EndpointSource?
    public var autodiscover: (ok: Bool, attempts: [AutodiscoverAttempt])?

    public init(
        ewsUrl: String?, oabUrl: String?, endpointSource: EndpointSource?,
        autodiscover: (ok: Bool, attempts: [AutodiscoverAttempt])? = nil
    ) {
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
        public static let parameterNames = [
            "profileId", "userName", "domain", "email", "password", "autodiscover",
            "allowRedirectHosts", "impersonateMailbox",
        ]
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
                throw .invalidParams(
                    field: "userName",
                    "Enter the user name without the domain; put the domain in 'domain' (for DOMAIN\\alice: userName 'alice', domain 'DOMAIN').")
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
