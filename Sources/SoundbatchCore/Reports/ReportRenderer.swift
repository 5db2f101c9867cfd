import Foundation

/// Renders reports in every format. Credits show with two decimals; cells soundbatch
/// writes as numbers stay numbers; user text never runs as a spreadsheet formula.
public enum ReportRenderer {

    /// `wide`: every column in the terminal's table, not only those that matter most.
    /// `failures`: the failed jobs the HTML page lists (the first of them).
    public static func write(
        _ report: SpendReport, timeline: [CreditPoint], failures: [FailedJob] = [],
        format: ReportFormat, wide: Bool = false, to out: TextOutput, title: String, generatedAt: String
    ) throws {
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try out.write(String(decoding: try encoder.encode(report), as: UTF8.self) + "\n")
        case .csv:
            let table = totalsTable(report, allStates: true)
            for row in [table.header] + table.rows {
                try out.write(row.map(csvCell).joined(separator: ",") + "\r\n")
            }
        case .table, .markdown:
            let table = format == .table ? terminalTable(report, wide: wide) : totalsTable(report, allStates: false)
            try out.write(format == .table ? aligned(table) : markdown(table))
            for note in notes(report.total) {
                try out.write("\n" + (format == .table ? note.wrapped() : note) + "\n")
            }
        case .html:
            try out.write(
                html(report, timeline: timeline, failures: failures, title: title, generatedAt: generatedAt))
        }
    }

    /// A cell of a rendered table: text, or a number aligned right.
    public enum Cell: Equatable {
        case text(String)
        case number(String)

        var text: String {
            switch self {
            case let .text(text), let .number(text): text
            }
        }
    }

    struct Table {
        var header: [Cell]
        var rows: [[Cell]]
    }

    static func money(_ value: Double) -> String { decimal(value, places: 2) }

    /// What a total leaves out, in sentences: jobs with no charge yet, and requests in doubt.
    public static func notes(_ t: SpendTotals) -> [String] {
        var notes: [String] = []
        if t.unchargedJobs > 0 {
            notes.append(
                "\(t.unchargedJobs) \(t.unchargedJobs == 1 ? "job has" : "jobs have") no charge yet (still running, "
                    + "or sent without an answer); the running ones are estimated at "
                    + "\(money(t.unchargedEstimate)) credits, not counted as charged.")
        }
        if let note = inDoubtNote(t) { notes.append(note) }
        if let note = callbackNote(t) { notes.append(note) }
        return notes
    }

    /// Requests in doubt that their own callbacks settled (paid once), and sounds paid twice.
    public static func callbackNote(_ t: SpendTotals) -> String? {
        var sentences: [String] = []
        let one = t.settledByCallback == 1
        if t.settledByCallback > 0 {
            sentences.append(
                "\(t.settledByCallback) \(one ? "job" : "jobs") in doubt settled by \(one ? "its" : "their") own "
                    + "\(one ? "callback" : "callbacks"): paid once, never sent again.")
        }
        if t.paidTwice > 0 {
            sentences.append(
                "\(t.paidTwice) \(t.paidTwice == 1 ? "sound" : "sounds") paid twice: a request in doubt made a task "
                    + "found only after its job was sent again; kept as an earlier take, both charges counted above.")
        }
        return sentences.isEmpty ? nil : sentences.joined(separator: " ")
    }

    /// Requests that got no answer: the service may hold tasks, and charges, for them besides
    /// those shown, even for jobs sent again since.
    public static func inDoubtNote(_ t: SpendTotals) -> String? {
        guard t.inDoubt > 0 else { return nil }
        let cost = t.inDoubtMayCost.map { "up to about \(money($0)) credits" } ?? "an amount not known yet"
        return "\(t.inDoubt) \(t.inDoubt == 1 ? "job had a request" : "jobs had a request") in doubt (sent, no answer "
            + "came): the service may have charged \(cost) for \(t.inDoubt == 1 ? "it" : "them") on top of the above; "
            + "check your MusicGPT account."
    }

    static func totalsTable(_ report: SpendReport, allStates: Bool) -> Table {
        let states = JobState.allCases.map(\.rawValue).filter { state in
            allStates || report.total.states[state, default: 0] > 0
        }
        let header =
            [report.grouping, "jobs"] + states + [
                "credits_estimated", "credits_charged", "difference", "average_per_job", "average_per_second",
                "no_charge_yet", "no_charge_yet_estimate", "requests_in_doubt", "requests_in_doubt_may_cost",
                "settled_by_callback",
                "paid_twice", "first_submitted", "last_submitted"
            ]
        func row(_ t: SpendTotals) -> [Cell] {
            [.text(t.group), .number(String(t.jobs))] + states.map { .number(String(t.states[$0, default: 0])) } + [
                .number(money(t.creditsEstimated)), .number(money(t.creditsCharged)), .number(money(t.difference)),
                t.averagePerJob.map { .number(money($0)) } ?? .text(""),
                t.averagePerSecond.map { .number(money($0)) } ?? .text(""),
                .number(String(t.unchargedJobs)), .number(money(t.unchargedEstimate)),
                .number(String(t.inDoubt)), t.inDoubtMayCost.map { .number(money($0)) } ?? .text(""),
                .number(String(t.settledByCallback)), .number(String(t.paidTwice)),
                .text(t.firstSubmitted ?? ""), .text(t.lastSubmitted ?? "")
            ]
        }
        return Table(header: header.map(Cell.text), rows: report.groups.map(row) + [row(report.total)])
    }

    /// The totals as a person reads them on a terminal: headers in words, and only the
    /// columns that matter most unless `wide`.
    static func terminalTable(_ report: SpendReport, wide: Bool) -> Table {
        if wide {
            var table = totalsTable(report, allStates: false)
            table.header = table.header.map { .text($0.text.replacingOccurrences(of: "_", with: " ")) }
            return table
        }
        let header = [
            report.grouping, "jobs", "done", "failed", "credits estimated", "credits charged", "no charge yet"
        ]
        func row(_ t: SpendTotals) -> [Cell] {
            let failed = JobState.failedForGood.map { t.states[$0.rawValue, default: 0] }.reduce(0, +)
            return [
                .text(t.group), .number(String(t.jobs)), .number(String(t.states["completed", default: 0])),
                .number(String(failed)), .number(money(t.creditsEstimated)), .number(money(t.creditsCharged)),
                .number(String(t.unchargedJobs))
            ]
        }
        return Table(header: header.map(Cell.text), rows: report.groups.map(row) + [row(report.total)])
    }
}
