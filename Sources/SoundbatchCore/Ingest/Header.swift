import Foundation

/// How many sounds a row may ask for: `run --takes` for every row, a `takes` column (kept
/// as metadata too) for its own.
public enum RowTakes {
    public static let column = "takes"
    public static let allowed = 1...20
}

/// The columns soundbatch reads itself; every other column is metadata.
enum KnownColumn: String {
    case id, prompt
    case audioLength = "audio_length"
    case webhookURL = "webhook_url"
}

/// What the file calls the prompt, id and length columns, when not `prompt`, `id` and
/// `audio_length` (`--prompt-column`, `--id-column`, `--length-column`).
public struct ColumnNames: Sendable, Equatable {
    public var prompt: String?
    public var id: String?
    public var length: String?

    public init(prompt: String? = nil, id: String? = nil, length: String? = nil) {
        self.prompt = prompt
        self.id = id
        self.length = length
    }
}

/// What one CSV row says, once checked.
struct JobRow {
    var key: String?  // the row's `id`, when the file has that column
    var prompt: String
    var audioLengthText: String
    var audioLength: Int?
    var webhookURL: String?
    var metadata: String?
    var problem: String?

    /// What makes two rows the same job when the file has no `id` column.
    var content: String {
        [prompt, audioLength.map(String.init) ?? audioLengthText, webhookURL ?? ""].joined(separator: "\u{1F}")
    }
}

/// The header row: which column holds what.
struct Header {
    var names: [String]
    var id: Int?
    var prompt: Int
    var audioLength: Int?
    var webhookURL: Int?
    /// Indices and names of the columns kept as metadata.
    var extra: [(index: Int, name: String)]
    /// A `takes` column (kept as metadata too): how many sounds its row asks for.
    var takes: Int?
    /// With no length column, one kept as metadata whose name says it holds lengths
    /// (length, duration, seconds), as the file writes it: its values are watched.
    var lengthLike: (index: Int, name: String)?

    /// Reads the header. `columns` names the prompt and id columns when the file calls
    /// them something else.
    static func parse(_ record: CSVRecord, columns: ColumnNames = ColumnNames()) -> Result<Header, HeaderProblem> {
        if let problem = record.problem { return .failure(HeaderProblem("the header: \(problem)")) }
        let written = record.fields.map(\.trimmed)
        var names = written.map { $0.lowercased() }
        var seen: [String: Int] = [:]
        for (index, name) in names.enumerated() {
            if name.isEmpty {
                return .failure(
                    HeaderProblem(
                        "column \(index + 1) of the header has no name; name every column, or delete the empty column"))
            }
            if let first = seen[name] {
                return .failure(
                    HeaderProblem(
                        "the header names \"\(written[index])\" twice (columns \(first + 1) and \(index + 1)); "
                            + "column names must be unique"
                    ))
            }
            seen[name] = index
        }
        // A column named by --prompt-column or --id-column stands for prompt or id.
        for (option, given, known) in [
            ("--prompt-column", columns.prompt, KnownColumn.prompt), ("--id-column", columns.id, .id),
            ("--length-column", columns.length, .audioLength)
        ] {
            guard let given else { continue }
            guard let index = seen[given.trimmed.lowercased()] else {
                return .failure(
                    HeaderProblem(
                        "\(option) \"\(given)\": the header has no such column (found: \(quoted(written)))"))
            }
            if let clash = seen[known.rawValue], clash != index {
                return .failure(
                    HeaderProblem(
                        "\(option) \"\(given)\": the header also has a column named \(known.rawValue) "
                            + "(column \(clash + 1)); rename one of them"))
            }
            seen[names[index]] = nil
            names[index] = known.rawValue
            seen[known.rawValue] = index
        }
        guard let prompt = seen[KnownColumn.prompt.rawValue] else {
            var text = "the header has no prompt column (found: \(quoted(written)))"
            if let likely = likeliestPrompt(written) {
                text += "; rename \"\(likely)\" to prompt, or pass --prompt-column '\(likely)'"
            } else {
                text += "; the first line must name the columns, one of them \"prompt\" (or pass --prompt-column NAME)"
            }
            return .failure(HeaderProblem(text))
        }
        let known = Set([KnownColumn.id, .prompt, .audioLength, .webhookURL].map(\.rawValue))
        // The sheet's own columns keep their names as written (`CatID`), for the reports, the
        // library's manifest and its tags; they are told apart letter case aside (`seen`). The
        // ledger reads `takes` itself (`LedgerSQL.addVariations`), under its own name.
        let extra: [(index: Int, name: String)] = names.enumerated().filter { !known.contains($0.element) }
            .map { ($0.offset, $0.element == RowTakes.column ? RowTakes.column : written[$0.offset]) }
        let audioLength = seen[KnownColumn.audioLength.rawValue]
        let saysLength = { (name: String) in
            ["length", "duration", "second", "secs", "(s)"].contains { name.contains($0) }
        }
        let lengthLike: (index: Int, name: String)? =
            audioLength != nil
            ? nil : extra.first { saysLength($0.name.lowercased()) }.map { ($0.index, written[$0.index]) }
        return .success(
            Header(
                names: names,
                id: seen[KnownColumn.id.rawValue],
                prompt: prompt,
                audioLength: audioLength,
                webhookURL: seen[KnownColumn.webhookURL.rawValue],
                extra: extra, takes: seen[RowTakes.column], lengthLike: lengthLike))
    }

    /// The names as the file wrote them, quoted and comma-separated.
    private static func quoted(_ names: [String]) -> String {
        names.map { "\"\($0)\"" }.joined(separator: ", ")
    }

    /// The column most likely meant as the prompt: one whose name says prompt, else one
    /// that says description or text.
    private static func likeliestPrompt(_ names: [String]) -> String? {
        for hint in ["prompt", "description", "text", "sound"] {
            if let name = names.first(where: { $0.lowercased().contains(hint) }) { return name }
        }
        return nil
    }

    struct HeaderProblem: Error {
        var text: String
        init(_ text: String) { self.text = text }
    }

    /// Reads and checks one row. A row with a problem still yields its values, so that
    /// --skip-invalid can record it.
    func row(from record: CSVRecord) -> JobRow {
        let fields = record.fields
        func field(_ index: Int?) -> String {
            guard let index, index < fields.count else { return "" }
            return fields[index]
        }
        var problem = record.problem
        func flag(_ text: String) { if problem == nil { problem = text } }

        if fields.count > names.count {
            flag(
                "this row has \(fields.count) fields but the header has \(names.count); "
                    + "enclose fields that contain commas in quotes"
            )
        }
        let prompt = field(self.prompt).trimmed
        if prompt.isEmpty { flag("the prompt is empty; describe the sound to generate") }

        let audioLengthText = field(audioLength).trimmed
        var audioLength: Int?
        if !audioLengthText.isEmpty {
            if let seconds = Int(audioLengthText), (1...600).contains(seconds) {
                audioLength = seconds
            } else {
                flag(
                    "audio_length \"\(audioLengthText)\" is not a whole number of seconds from 1 to 600; "
                        + "write one, or leave it empty for the service's default"
                )
            }
        }

        let takesText = field(takes).trimmed
        if !takesText.isEmpty, !(Int(takesText).map(RowTakes.allowed.contains) ?? false) {
            flag(
                "takes \"\(takesText)\" is not a whole number from 1 to \(RowTakes.allowed.upperBound); "
                    + "write how many sounds this row should get, or leave it empty for --takes (1 by default)")
        }

        let webhookText = field(webhookURL).trimmed
        if !webhookText.isEmpty && !Self.isWebURL(webhookText) {
            flag(
                "webhook_url \"\(webhookText)\" is not an absolute http or https URL; "
                    + "write one like https://example.com/hook, or leave it empty"
            )
        }

        var key: String?
        if let id {
            let text = field(id).trimmed
            if text.isEmpty { flag("the id is empty; give every row an id, unique in the file") } else { key = text }
        }

        return JobRow(
            key: key,
            prompt: prompt,
            audioLengthText: audioLengthText,
            audioLength: audioLength,
            webhookURL: webhookText.isEmpty ? nil : webhookText,
            metadata: metadata(fields),
            problem: problem)
    }

    static func isWebURL(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else { return false }
        return true
    }

    /// The extra columns as a JSON object, in header order; nil when there are none.
    private func metadata(_ fields: [String]) -> String? {
        guard !extra.isEmpty else { return nil }
        var json = "{"
        for (position, column) in extra.enumerated() {
            if position > 0 { json += "," }
            JSON.appendString(column.name, to: &json)
            json += ":"
            JSON.appendString(column.index < fields.count ? fields[column.index] : "", to: &json)
        }
        json += "}"
        return json
    }
}
