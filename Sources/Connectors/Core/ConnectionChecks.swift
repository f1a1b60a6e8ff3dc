import RPCCore
import WizardContract

/// The named, timed checks of one connection test, in order: each is announced as progress,
/// timed, and recorded; the first failure is recorded and ends the test (its error is thrown).
public struct ConnectionChecks: Sendable {
    public private(set) var checks: [ConnectionCheck] = []
    let progress: ProgressReporter

    public init(progress: @escaping ProgressReporter) {
        self.progress = progress
    }

    public mutating func run(
        _ name: String, _ what: String, percent: Int? = nil,
        _ body: () async throws(RPCError) -> String
    ) async throws(RPCError) {
        progress("testConnection", what, percent)
        let watch = Stopwatch()
        do {
            let message = try await body()
            checks.append(ConnectionCheck(name: name, ok: true, durationMs: watch.elapsedMs, message: message))
        } catch {
            checks.append(ConnectionCheck(name: name, ok: false, durationMs: watch.elapsedMs, message: error.message))
            throw error
        }
    }

    /// A check that already ran (concurrently with others): announced and recorded as `run`
    /// would have, in the caller's order; a failure ends the test here.
    public mutating func record(_ name: String, _ what: String, percent: Int? = nil, durationMs: Int, _ result: Result<String, RPCError>)
        throws(RPCError)
    {
        progress("testConnection", what, percent)
        switch result {
        case .success(let message):
            checks.append(ConnectionCheck(name: name, ok: true, durationMs: durationMs, message: message))
        case .failure(let error):
            checks.append(ConnectionCheck(name: name, ok: false, durationMs: durationMs, message: error.message))
            throw error
        }
    }

    /// Runs `body` over these checks and returns what ran with the error that stopped it.
    public static func collect(
        progress: @escaping ProgressReporter,
        _ body: (inout ConnectionChecks) async throws(RPCError) -> Void
    ) async -> ([ConnectionCheck], RPCError?) {
        var checks = ConnectionChecks(progress: progress)
        do {
            try await body(&checks)
            return (checks.checks, nil)
        } catch {
            return (checks.checks, error)
        }
    }
}
