import ConnectorCore
import Foundation
import RPCCore
import Synchronization
import Testing
import WizardContract

/// The step engine in-process: order, skipping after a failure, warnings that still block,
/// remediation on every warn and fail, real durations, and what an observer sees.
@Suite struct DiagnosisRunTests {
    final class Events: Sendable {
        let seen = Mutex<[String]>([])
        func record(_ event: DiagnosisEvent) {
            switch event {
            case .started(let id, _): seen.withLock { $0.append("start \(id)") }
            case .finished(let step): seen.withLock { $0.append("\(step.status.rawValue) \(step.id)") }
            }
        }
    }

    @Test func aFailureSkipsWhatNeedsItAndTheRestStillRuns() async {
        let events = Events()
        var run = DiagnosisRun(system: "exchange") { events.record($0) }
        await run.step("a", "The first") { _ throws(RPCError) in throw RPCError(.hostUnreachable, "Cannot reach a.") }
        await run.step("b", "Needs a", after: ["a"]) { _ throws(RPCError) in .pass("never") }
        await run.step("c", "Independent") { _ throws(RPCError) in .pass("ran") }
        #expect(run.steps.map(\.status) == [.fail, .skipped, .pass])
        #expect(run.steps[1].message == "Not checked: 'The first' did not succeed.")
        #expect(run.steps[1].kind == nil && run.steps[1].remediation == nil)
        // The default remediation of the kind when the error carried no hint.
        #expect(run.steps[0].kind == .hostUnreachable && run.steps[0].remediation == Remediation.default(for: .hostUnreachable))
        #expect(events.seen.withLock { $0 } == ["start a", "fail a", "skipped b", "start c", "pass c"])
    }

    @Test func aFailureReportedAsAWarningStillBlocksItsDependents() async {
        var run = DiagnosisRun(system: "exchange") { _ in }
        await run.step("tcp", "TCP", failureIsWarning: true) { _ throws(RPCError) in
            throw RPCError(.timeout, "No answer.", hint: "Open the firewall.", details: ["host": "a.test"])
        }
        await run.step("tls", "TLS", after: ["tcp"]) { _ throws(RPCError) in .pass("never") }
        // A warning the body returns does not block.
        await run.step("expiring", "Soon expired") { _ throws(RPCError) in .warn(.certificateUntrusted, "Expires in 3 days.", remediation: "Renew it.") }
        await run.step("after", "After the warning", after: ["expiring"]) { _ throws(RPCError) in .pass("ran") }
        #expect(run.steps.map(\.status) == [.warn, .skipped, .warn, .pass])
        #expect(run.steps[0].kind == .timeout && run.steps[0].remediation == "Open the firewall.")
        #expect(run.steps[0].evidence["host"] == "a.test")
        #expect(run.steps.filter { $0.status == .warn || $0.status == .fail }.allSatisfy { $0.kind != nil && $0.remediation != nil })
    }

    @Test func eachStepIsTimedOnItsOwn() async {
        var run = DiagnosisRun(system: "google") { _ in }
        await run.step("slow", "Slow") { evidence throws(RPCError) in
            try? await Task.sleep(for: .milliseconds(120))
            evidence["note"] = "slept"
            return .pass("done")
        }
        await run.step("fast", "Fast") { _ throws(RPCError) in .pass("done") }
        #expect(run.steps[0].durationMs >= 120)
        #expect(run.steps[1].durationMs < 100)
        #expect(run.steps[0].json["evidence"]?["note"] == "slept")
        #expect(run.steps[1].json["evidence"] == nil)
    }

    @Test func theResultIsNotOkOnlyWhenAStepFailed() {
        func step(_ status: DiagnosisStep.Status) -> DiagnosisStep {
            DiagnosisStep(id: status.rawValue, system: "exchange", title: "", status: status, durationMs: 0, message: "")
        }
        #expect(Diagnose.Result(generatedAt: "", steps: [step(.pass), step(.warn), step(.skipped)], reportPath: nil).ok)
        #expect(!Diagnose.Result(generatedAt: "", steps: [step(.pass), step(.fail)], reportPath: nil).ok)
    }
}
