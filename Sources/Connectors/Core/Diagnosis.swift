import RPCCore
import WizardContract

/// What a diagnosis step's body concludes when it does not throw. A thrown `RPCError` is a
/// failure: its kind, message and hint become the step's.
public struct StepFinding: Sendable {
    public private(set) var status: DiagnosisStep.Status
    public private(set) var message: String
    public private(set) var kind: ErrorKind?
    public private(set) var remediation: String?

    public static func pass(_ message: String) -> StepFinding {
        StepFinding(status: .pass, message: message)
    }

    /// Works, but something a person should look at (kind and remediation are required).
    public static func warn(_ kind: ErrorKind, _ message: String, remediation: String) -> StepFinding {
        StepFinding(status: .warn, message: message, kind: kind, remediation: remediation)
    }

    /// A failure found without an error thrown (e.g. a 200 that says no).
    public static func fail(_ kind: ErrorKind, _ message: String, remediation: String) -> StepFinding {
        StepFinding(status: .fail, message: message, kind: kind, remediation: remediation)
    }

    /// Nothing to check here (e.g. no impersonation configured).
    public static func skipped(_ message: String) -> StepFinding {
        StepFinding(status: .skipped, message: message)
    }
}

/// The facts a step saw, in the order it saw them. Only what a support engineer needs and
/// never a secret: hosts, addresses, versions, certificate facts, scopes, response codes.
public struct Evidence: Sendable {
    public private(set) var object = JSONObject()
    public init() {}

    public subscript(key: String) -> JSONValue? {
        get { object[key] }
        set { object[key] = newValue }
    }

    /// A space-separated scope list as an array.
    public mutating func scopes(_ key: String, _ scope: String?) {
        self[key] = scope.map { .array($0.split(separator: " ").map { .string(String($0)) }) }
    }

    /// Error details worth keeping; never `pem` (long) and nothing that is not listed.
    public mutating func add(detailsOf error: RPCError) {
        for key in ["host", "status", "responseCode", "aadsts", "error", "missingScopes", "state", "sha256", "subject", "issuer", "notAfter", "reason"] {
            if let value = error.details[key], self[key] == nil { self[key] = value }
        }
    }
}

/// What a diagnosis tells whoever watches it: a step starts (progress, a spinner), a step ends.
public enum DiagnosisEvent: Sendable {
    case started(id: String, title: String)
    case finished(DiagnosisStep)
}

public typealias DiagnosisObserver = @Sendable (DiagnosisEvent) -> Void

/// Runs the steps of one system in order. Each step is timed on its own; a failure does not
/// stop the run: a step that needs an earlier one (`after`) is skipped, saying which failed,
/// and every other step still runs, because it can still tell something.
public struct DiagnosisRun: Sendable {
    public let system: String
    public private(set) var steps: [DiagnosisStep] = []
    /// Steps whose failure was reported as a warning: what needs them is still skipped.
    private var blocking: Set<String> = []
    let observer: DiagnosisObserver

    public init(system: String, observer: @escaping DiagnosisObserver) {
        self.system = system
        self.observer = observer
    }

    /// The status of an earlier step (nil: it did not run).
    public func status(of id: String) -> DiagnosisStep.Status? {
        steps.last { $0.id == id }?.status
    }

    /// True when every one of `ids` ran and passed or warned.
    public func succeeded(_ ids: [String]) -> Bool {
        ids.allSatisfy { id in !blocking.contains(id) && (status(of: id).map { $0 == .pass || $0 == .warn } ?? false) }
    }

    /// `failureIsWarning`: the step checks one of several alternatives (an Autodiscover
    /// candidate), so a thrown error is reported as a warning; steps that need it are skipped.
    @discardableResult
    public mutating func step(
        _ id: String, _ title: String, after dependencies: [String] = [], failureIsWarning: Bool = false,
        _ body: (inout Evidence) async throws(RPCError) -> StepFinding
    ) async -> DiagnosisStep.Status {
        if let blocker = dependencies.first(where: { !succeeded([$0]) }) {
            let what = steps.last { $0.id == blocker }
            let why = what.map { "'\($0.title)' \($0.status == .skipped ? "was skipped" : "did not succeed")" } ?? "'\(blocker)' did not run"
            return record(
                DiagnosisStep(id: id, system: system, title: title, status: .skipped, durationMs: 0, message: "Not checked: \(why)."))
        }
        observer(.started(id: id, title: title))
        var evidence = Evidence()
        let watch = Stopwatch()
        let step: DiagnosisStep
        do {
            let finding = try await body(&evidence)
            step = DiagnosisStep(
                id: id, system: system, title: title, status: finding.status, durationMs: watch.elapsedMs, message: finding.message,
                kind: finding.kind, remediation: finding.remediation ?? finding.kind.map(Remediation.default(for:)),
                evidence: evidence.object)
        } catch {
            evidence.add(detailsOf: error)
            if failureIsWarning { blocking.insert(id) }
            step = DiagnosisStep(
                id: id, system: system, title: title, status: failureIsWarning ? .warn : .fail, durationMs: watch.elapsedMs, message: error.message,
                kind: error.kind, remediation: error.hint ?? Remediation.default(for: error.kind), evidence: evidence.object)
        }
        return record(step)
    }

    private mutating func record(_ step: DiagnosisStep) -> DiagnosisStep.Status {
        steps.append(step)
        observer(.finished(step))
        return step.status
    }
}

/// What to do about a kind when the error that raised it carried no hint of its own.
public enum Remediation {
    public static func `default`(for kind: ErrorKind) -> String {
        switch kind {
        case .hostUnreachable:
            "Check the host name, DNS, the firewall between this computer and the server, and any proxy (https_proxy)."
        case .timeout:
            "The server did not answer in time: check the firewall (a dropped connection looks like this), the proxy and the server's load."
        case .certificateUntrusted:
            "Renew or fix the server's certificate (valid dates, the host name in its Subject Alternative Names, a complete chain), start syncwizard with --ca-file for your company's CA, or pin it with trustCertificate after checking its fingerprint."
        case .serverError:
            "The server reported an error; check its event log and try again later."
        case .endpointInvalid:
            "Override the EWS and OAB URLs (overrideEndpoints) with the ones Exchange lists (Get-WebServicesVirtualDirectory, Get-OabVirtualDirectory)."
        case .notSignedIn:
            "Sign in first (startSignIn, or submitExchangeCredentials for Exchange)."
        case .reauthenticationRequired:
            "Sign in again."
        default:
            "See the message; fix the setting it names and run the diagnosis again."
        }
    }
}
