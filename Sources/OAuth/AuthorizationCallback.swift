/// What the provider sent back to the redirect URI.
public enum AuthorizationCallback: Sendable, Equatable {
    case code(code: String, state: String?, extra: [String: String])
    case error(error: String, description: String?, state: String?)

    public var state: String? {
        switch self {
        case .code(_, let state, _), .error(_, _, let state): state
        }
    }

    public enum ParseFailure: Error, Equatable { case notARedirect(String) }

    /// From the request target the listener saw ("/?code=…&state=…") or a whole pasted URL
    /// ("http://127.0.0.1:49152/?code=…"). Parameters may also sit in the fragment.
    public static func parse(_ target: String) -> Result<AuthorizationCallback, ParseFailure> {
        guard target.utf8.count <= 16384 else { return .failure(.notARedirect("the URL is too long")) }
        // Delimiters are found by Unicode scalar: "?" plus a combining mark is one Character.
        let scalars = target.unicodeScalars
        var query: Substring = ""
        if let q = scalars.firstIndex(of: "?") {
            let afterQ = scalars[scalars.index(after: q)...]
            let end = afterQ.firstIndex(of: "#") ?? afterQ.endIndex
            query = Substring(afterQ[..<end])
        }
        if query.isEmpty, let hash = scalars.firstIndex(of: "#") {
            query = Substring(scalars[scalars.index(after: hash)...])
        }
        guard !query.isEmpty, let parameters = FormEncoding.parseQuery(query) else {
            return .failure(.notARedirect("the URL carries no authorization answer (no code or error parameter)"))
        }
        // RFC 6749 §3.1: a parameter must not appear twice; which one would count is ambiguous.
        if let names = FormEncoding.parameterNames(query), Set(names).count != names.count {
            return .failure(.notARedirect("a parameter appears more than once (RFC 6749 §3.1)"))
        }
        if let error = parameters["error"], !error.isEmpty {
            return .success(.error(error: error, description: parameters["error_description"], state: parameters["state"]))
        }
        if let code = parameters["code"], !code.isEmpty {
            var extra = parameters
            extra["code"] = nil
            extra["state"] = nil
            return .success(.code(code: code, state: parameters["state"], extra: extra))
        }
        // Microsoft's adminconsent answers admin_consent=True with no code.
        if parameters["admin_consent"] != nil {
            var extra = parameters
            extra["state"] = nil
            return .success(.code(code: "", state: parameters["state"], extra: extra))
        }
        return .failure(.notARedirect("the URL carries no authorization answer (no code or error parameter)"))
    }
}
