import RPCCore
import Threading

/// Removes secrets from anything that leaves the process other than the protocol replies
/// themselves: the trace file and log lines.
///
/// Two nets: members whose name marks a secret are blanked wherever they appear, and every
/// secret value the process has been handed (passwords, tokens, client secrets, codes) is
/// registered so it is replaced even where it shows up under another name.
public final class Redactor: Sendable {
    public static let shared = Redactor()
    public static let mask = "«redacted»"

    /// Member names (compared lowercased, without '_' and '-') whose values are secrets.
    static let secretMemberNames: Set<String> = [
        "password", "clientsecret", "refreshtoken", "accesstoken", "idtoken", "token",
        "code", "codeverifier", "redirecturl", "secret", "authorization", "assertion",
        "devicecode", "usercode",
    ]

    private let knownSecrets = MutexBox<Set<String>>([])

    public init() {}

    /// Remember a secret value so it is blanked wherever it appears. Short values are ignored:
    /// replacing "a" everywhere would garble the trace without protecting anything.
    public func register(_ secret: String) {
        guard secret.utf8.count >= 4 else { return }
        knownSecrets.withLock { _ = $0.insert(secret) }
    }

    /// Also near misses ("clientSecert", "pasword"): a typo must not put a secret in the clear.
    static let secretFragments = ["secret", "secert", "passw", "pasw", "token", "pwd"]

    static func normalized(_ name: String) -> String {
        var normalized = name.lowercased()
        normalized.removeAll { $0 == "_" || $0 == "-" }
        return normalized
    }

    public static func isSecretMember(_ name: String) -> Bool {
        let normalized = normalized(name)
        return secretMemberNames.contains(normalized) || secretFragments.contains { normalized.contains($0) }
    }

    /// Whether this member's value is blanked. Booleans and null never are (`hasPassword`); a
    /// `code` is an authorization code only when it is a string: the numbers under that name
    /// are JSON-RPC error codes, which a trace must keep.
    static func hides(_ name: String, _ value: JSONValue) -> Bool {
        guard isSecretMember(name), !value.isNull, value.boolValue == nil else { return false }
        if case .number = value, normalized(name) == "code" { return false }
        return true
    }

    public func redact(_ value: JSONValue) -> JSONValue {
        // A value seen under a secret's name is a secret wherever else it appears in the message
        // (a misspelled duplicate member, say).
        harvest(value)
        let secrets = knownSecrets.withLock { $0 }
        return redact(value, secrets: secrets)
    }

    private func harvest(_ value: JSONValue) {
        switch value {
        case .array(let elements): elements.forEach(harvest)
        case .object(let object):
            for member in object.members {
                if Self.isSecretMember(member.key), case .string(let secret) = member.value { register(secret) } else { harvest(member.value) }
            }
        default: break
        }
    }

    public func redact(_ text: String) -> String {
        let secrets = knownSecrets.withLock { $0 }
        return scrub(text, secrets: secrets)
    }

    private func redact(_ value: JSONValue, secrets: Set<String>) -> JSONValue {
        switch value {
        case .string(let s): return .string(scrub(s, secrets: secrets))
        case .array(let elements): return .array(elements.map { redact($0, secrets: secrets) })
        case .object(let object):
            var out = JSONObject()
            for member in object.members {
                if Self.hides(member.key, member.value) {
                    out.append(member.key, .string(Self.mask))
                } else {
                    out.append(member.key, redact(member.value, secrets: secrets))
                }
            }
            return .object(out)
        default: return value
        }
    }

    private func scrub(_ text: String, secrets: Set<String>) -> String {
        var text = text
        for secret in secrets where text.contains(secret) {
            text = text.replacing(secret, with: Self.mask)
        }
        return text
    }
}
