import RPCCore
import WizardContract

/// The diagnosis as a self-contained Markdown file for a support ticket: the same steps and
/// evidence as the JSON result, syncwizard's version and the time. It is built from the
/// scrubbed result only, so it cannot hold what the result does not.
struct DiagnosisReport {
    let result: Diagnose.Result
    let profileName: String
    let profileId: String
    let version: String

    var markdown: String {
        let steps = result.steps
        func count(_ status: DiagnosisStep.Status) -> Int { steps.filter { $0.status == status }.count }
        var text = "# syncwizard diagnosis\n\n"
        text += "| | |\n|---|---|\n"
        text += "| Profile | \(Self.cell(profileName)) (`\(profileId)`) |\n"
        text += "| Generated | \(result.generatedAt) |\n"
        text += "| syncwizard | \(Self.cell(version)) |\n"
        text +=
            "| Result | **\(result.ok ? "OK" : "FAILED")**: \(count(.pass)) passed, \(count(.warn)) warnings, \(count(.fail)) failed, \(count(.skipped)) skipped |\n\n"
        text += "## Summary\n\n| Step | Status | Time | Message |\n|---|---|---|---|\n"
        for step in steps {
            text += "| `\(step.id)` | \(Self.label(step.status)) | \(step.durationMs) ms | \(Self.cell(step.message)) |\n"
        }
        text += "\n## Steps\n"
        for step in steps {
            text += "\n### \(Self.label(step.status)): \(Self.inline(step.title))\n\n"
            text += "`\(step.id)` (\(step.system)), \(step.durationMs) ms\n\n"
            text += Self.inline(step.message) + "\n"
            if let kind = step.kind { text += "\n- Kind: `\(kind.name)`\n" }
            if let remediation = step.remediation { text += "- What to do: \(Self.inline(remediation))\n" }
            if !step.evidence.members.isEmpty {
                text += "\n| Evidence | |\n|---|---|\n"
                for member in step.evidence.members { text += "| \(Self.cell(member.key)) | \(Self.cell(Self.render(member.value))) |\n" }
            }
        }
        return text
    }

    static func label(_ status: DiagnosisStep.Status) -> String {
        switch status {
        case .pass: "PASS"
        case .warn: "WARN"
        case .fail: "FAIL"
        case .skipped: "SKIPPED"
        }
    }

    /// Evidence values in one line: strings as they are, lists joined, objects as key=value.
    static func render(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): s
        case .array(let items): items.isEmpty ? "none" : items.map(render).joined(separator: "; ")
        case .object(let o): o.members.map { "\($0.key)=\(render($0.value))" }.joined(separator: ", ")
        case .null: "—"
        default: JSONWriter.string(value)
        }
    }

    /// Text inside a table cell: no line breaks, pipes escaped.
    static func cell(_ text: String) -> String {
        inline(text).replacing("|", with: "\\|")
    }

    static func inline(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}
