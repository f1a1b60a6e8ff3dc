import HTTP

/// An on-premises Exchange account as the wizard collects it.
public struct ExchangeAccount: Sendable {
    public var userName: String
    /// Blank when the user name is an e-mail address.
    public var domain: String?
    public var email: String
    public var password: String
    /// A mailbox the account acts for via EWS impersonation.
    public var impersonateMailbox: String?

    public init(userName: String, domain: String?, email: String, password: String, impersonateMailbox: String? = nil) {
        self.userName = userName
        self.domain = domain
        self.email = email
        self.password = password
        self.impersonateMailbox = impersonateMailbox
    }

    /// NTLM with DOMAIN\user, or the bare user name (often the e-mail address) without a domain.
    /// Chosen explicitly: CURLAUTH_ANY would pick Negotiate and never fall back to NTLM.
    var ntlm: HTTPAuthentication { .ntlm(user: userName, domain: domain, password: password) }

    var basic: HTTPAuthentication {
        .basic(user: domain.map { "\($0)\\\(userName)" } ?? userName, password: password)
    }
}

enum ExchangeHints {
    static let userNameForms =
        "Check the password and the user name form: either the user name with the Windows domain in 'domain' "
        + "(user 'alice', domain 'CONTOSO'), or the full e-mail address as user name with 'domain' left blank."
}
