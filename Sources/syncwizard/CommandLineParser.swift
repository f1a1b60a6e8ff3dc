/// A small command-line parser for `--name value`, `--name=value`, repeatable options, `--help`,
/// `--version` and the hidden `--help-markdown`. Its option table is the one source of the option
/// docs: `--help` renders it for people, `--help-markdown` as the Markdown table that
/// scripts/sync-docs.sh writes into README.md, Protocol/README.md and openrpc.json. swift-argument-parser did this before; it cost 16 M instructions per start
/// (protocol-conformance scans over every loaded image) and brought FoundationEssentials
/// (2 MiB resident) into a process that otherwise needs no Foundation.
struct CommandLineParser {
    struct Option {
        let name: String
        let valueName: String
        /// What the option does. `Backticks` mark code: kept in Markdown, dropped in --help.
        let help: String
        var repeatable = false
        /// Shown as "default: …" (backticks as in `help`; a value without any is code in Markdown).
        var defaultValue: String?
        /// The environment variable used when the option is not given.
        var environment: String?
        /// How the variable's value differs from the option's, e.g. "comma separated".
        var environmentNote: String?
    }

    enum Outcome: Equatable {
        case help
        /// The hidden --help-markdown: the option table as Markdown, for the docs.
        case helpMarkdown
        case version
        /// Option name → its values in order (one unless repeatable).
        case values([String: [String]])
    }

    struct UsageError: Error, Equatable {
        var message: String
    }

    let commandName: String
    let options: [Option]

    func parse(_ arguments: some Sequence<String>) throws(UsageError) -> Outcome {
        var values: [String: [String]] = [:]
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            if argument == "--help" || argument == "-h" { return .help }
            if argument == "--help-markdown" { return .helpMarkdown }
            if argument == "--version" { return .version }
            // "--" ends the options; this command takes nothing after them.
            if argument == "--" {
                if let extra = iterator.next() {
                    throw UsageError(message: "Unexpected argument '\(extra)': \(commandName) takes options only.")
                }
                break
            }
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw UsageError(
                    message: argument.hasPrefix("-") && argument != "-"
                        ? "Unknown option '\(argument)'."
                        : "Unexpected argument '\(argument)': \(commandName) takes options only.")
            }
            let body = argument.dropFirst(2)
            let name: String
            let inlineValue: String?
            if let equals = body.firstIndex(of: "=") {
                name = String(body[..<equals])
                inlineValue = String(body[body.index(after: equals)...])
            } else {
                name = String(body)
                inlineValue = nil
            }
            guard let option = options.first(where: { $0.name == name }) else {
                var message = "Unknown option '--\(name)'."
                if let suggestion = closestOption(to: name) { message += " Did you mean '--\(suggestion)'?" }
                throw UsageError(message: message)
            }
            guard let value = inlineValue ?? iterator.next() else {
                throw UsageError(message: "Missing value for '--\(name) <\(option.valueName)>'.")
            }
            // "--config-dir --log-level debug" forgot the directory: never take an option as a value.
            if inlineValue == nil, value.hasPrefix("--") {
                throw UsageError(
                    message:
                        "Missing value for '--\(name) <\(option.valueName)>' (got the option '\(value)'; write --\(name)=VALUE for a value that starts with --)."
                )
            }
            // "--config-dir=" would mean the current directory or the root, depending on who reads it.
            guard !value.isEmpty else {
                throw UsageError(message: "'--\(name)' needs a value: <\(option.valueName)> is empty.")
            }
            if values[name] != nil, !option.repeatable {
                throw UsageError(message: "'--\(name)' was given more than once.")
            }
            values[name, default: []].append(value)
        }
        return .values(values)
    }

    /// The option a typo most likely meant: within 2 edits, or the only one it is a prefix of.
    func closestOption(to name: String) -> String? {
        let scored = options.map { ($0.name, editDistance(Array(name.utf8), Array($0.name.utf8))) }
        if let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= 2 { return best.0 }
        let prefixed = options.filter { $0.name.hasPrefix(name) }
        return prefixed.count == 1 ? prefixed[0].name : nil
    }

    func helpText(abstract: String, discussion: String) -> String {
        var text = "OVERVIEW: " + wrapped(abstract, width: 70).joined(separator: "\n  ") + "\n\n"
        text += wrapped(discussion, width: 80).joined(separator: "\n") + "\n\nUSAGE: \(commandName) [OPTIONS]\n\nOPTIONS:\n"
        let all =
            options + [
                Option(name: "version", valueName: "", help: "Show the version."),
                Option(name: "help", valueName: "", help: "Show this help (also -h)."),
            ]
        for option in all {
            text += "  --\(option.name)"
            if !option.valueName.isEmpty { text += " <\(option.valueName)>" }
            text += "\n"
            var help = option.help
            if option.repeatable { help += " Repeatable." }
            var notes: [String] = []
            if let variable = option.environment {
                notes.append("env " + variable + (option.environmentNote.map { ", " + $0 } ?? ""))
            }
            if let value = option.defaultValue { notes.append("default: " + value) }
            for line in wrapped(Self.plain(help), width: 72) { text += "      \(line)\n" }
            if !notes.isEmpty {
                for line in wrapped(Self.plain("(" + notes.joined(separator: "; ") + ")"), width: 72) { text += "      \(line)\n" }
            }
        }
        return text
    }

    /// The options as a Markdown table (option, environment, default, what), for the docs.
    func markdownTable() -> String {
        var text = "| option | environment | default | what |\n|---|---|---|---|\n"
        for option in options {
            var flag = "`--\(option.name)"
            if !option.valueName.isEmpty { flag += " <\(option.valueName)>" }
            flag += "`"
            if option.repeatable { flag += " (repeatable)" }
            var environment = option.environment.map { "`\($0)`" } ?? ""
            if let note = option.environmentNote { environment += " (\(note))" }
            let defaultValue = option.defaultValue.map { $0.contains("`") ? $0 : "`\($0)`" } ?? ""
            let cells = [flag, environment, defaultValue, option.help].map { $0.replacing("|", with: "\\|") }
            text += "| " + cells.joined(separator: " | ") + " |\n"
        }
        return text
    }

    /// Help text for a terminal: without the backticks that mark code in Markdown.
    private static func plain(_ text: String) -> String {
        text.replacing("`", with: "")
    }

    private func wrapped(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty, line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += line.isEmpty ? String(word) : " " + word
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }

    private func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
}
