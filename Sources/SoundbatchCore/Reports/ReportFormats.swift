import Foundation

public enum ReportFormat: String, Sendable, CaseIterable {
    case table, csv, json, markdown, html
}

/// Buffered text output to a file descriptor, so a million-row export stays fast and flat.
public final class TextOutput {
    private let fd: Int32
    private var buffer: [UInt8] = []

    public init(fd: Int32) {
        self.fd = fd
        buffer.reserveCapacity(1 << 16)
    }

    public func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { try flush() }
    }

    public func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let written = buffer[offset...].withUnsafeBytes { writeBytes(fd, $0) }
            if written < 0 {
                if errno == EINTR { continue }
                throw ReportError.cannotWrite(String(cString: strerror(errno)))
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

private func writeBytes(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
    write(fd, bytes.baseAddress, bytes.count)
}

public enum ReportError: Error, CustomStringConvertible {
    case cannotWrite(String)
    public var description: String {
        switch self {
        case let .cannotWrite(reason): "cannot write the report: \(reason)"
        }
    }
}

/// Renders reports in every format. Credits show with two decimals; cells soundbatch
/// writes as numbers stay numbers; user text never runs as a spreadsheet formula.
public enum ReportRenderer {
    // MARK: Totals

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
            for note in notes(report.total) { try out.write("\n" + note + "\n") }
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
        return notes
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
                "no_charge_yet", "no_charge_yet_estimate", "in_doubt", "in_doubt_may_cost", "first_submitted",
                "last_submitted"
            ]
        func row(_ t: SpendTotals) -> [Cell] {
            [.text(t.group), .number(String(t.jobs))] + states.map { .number(String(t.states[$0, default: 0])) } + [
                .number(money(t.creditsEstimated)), .number(money(t.creditsCharged)), .number(money(t.difference)),
                t.averagePerJob.map { .number(money($0)) } ?? .text(""),
                t.averagePerSecond.map { .number(money($0)) } ?? .text(""),
                .number(String(t.unchargedJobs)), .number(money(t.unchargedEstimate)),
                .number(String(t.inDoubt)), t.inDoubtMayCost.map { .number(money($0)) } ?? .text(""),
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

    static func aligned(_ table: Table) -> String {
        let all = [table.header] + table.rows
        let widths = table.header.indices.map { column in all.map { $0[column].text.count }.max() ?? 0 }
        return all.map { row in
            zip(row, widths).map { cell, width in
                let padding = String(repeating: " ", count: width - cell.text.count)
                if case .number = cell { return padding + cell.text }
                return cell.text + padding
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }.joined(separator: "\n") + "\n"
    }

    static func markdown(_ table: Table) -> String {
        func line(_ cells: [String]) -> String { "| " + cells.joined(separator: " | ") + " |" }
        let separator = table.header.indices.map { column -> String in
            if let first = table.rows.first, case .number = first[column] { return "---:" }
            return "---"
        }
        return
            ([line(table.header.map(markdownCell)), line(separator)]
            + table.rows.map { line($0.map(markdownCell)) }).joined(separator: "\n") + "\n"
    }

    /// A cell's text that cannot break a markdown table row.
    static func markdownCell(_ cell: Cell) -> String {
        cell.text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    // MARK: Jobs

    public static func writeJobsHeader(
        format: ReportFormat, metadataKeys: [String], width: Int = 100, to out: TextOutput
    ) throws {
        let columns = ReportJob.columns + metadataKeys.map { ReportJob.ownColumnPrefix + $0 }
        switch format {
        case .csv: try out.write(columns.map { csvCell(.text($0)) }.joined(separator: ",") + "\r\n")
        case .markdown:
            try out.write(
                "| " + columns.map { markdownCell(.text($0)) }.joined(separator: " | ") + " |\n|"
                    + String(repeating: " --- |", count: columns.count) + "\n")
        case .table: try out.write(JobLine(width: width).header)
        case .json: try out.write("{\"jobs\": [\n")
        case .html: break
        }
    }

    public static func writeJob(
        _ job: ReportJob, index: Int, format: ReportFormat, metadataKeys: [String], width: Int = 100,
        to out: TextOutput
    ) throws {
        let cells: [Cell] = job.values.enumerated().map { position, value in
            switch value {
            case .none: .text("")
            case let .number(number, decimals):
                // Metadata is user text even when it looks like a number.
                position < ReportJob.columns.count
                    ? .number(decimal(number, places: decimals)) : .text(decimal(number, places: decimals))
            case let .text(text): .text(text)
            }
        }
        switch format {
        case .csv:
            var line = ""
            for (position, cell) in cells.enumerated() {
                if position > 0 { line += "," }
                line += csvCell(cell)
            }
            try out.write(line + "\r\n")
        case .markdown:
            try out.write("| " + cells.map(markdownCell).joined(separator: " | ") + " |\n")
        case .table:
            try out.write(JobLine(width: width).line(job))
        case .json:
            var object = "  {"
            for (position, (name, cell)) in zip(ReportJob.columns, cells).enumerated() {
                if position > 0 { object += ", " }
                JSON.appendString(name, to: &object)
                object += ": "
                switch cell {
                case let .number(text): object += text
                case let .text(text) where text.isEmpty: object += "null"
                case let .text(text): JSON.appendString(text, to: &object)
                }
            }
            if !metadataKeys.isEmpty {
                object += ", \"columns\": {"
                for (position, (name, cell)) in zip(metadataKeys, cells.dropFirst(ReportJob.columns.count)).enumerated()
                {
                    if position > 0 { object += ", " }
                    JSON.appendString(name, to: &object)
                    object += ": "
                    JSON.appendString(cell.text, to: &object)
                }
                object += "}"
            }
            try out.write((index > 0 ? ",\n" : "") + object + "}")
        case .html: break
        }
    }

    /// A job as one line of a terminal's table: the row, its state, credits, file (when the
    /// terminal is wide enough) and reason, in columns of fixed width (so a million rows
    /// stream without being held), cut to the terminal's width.
    struct JobLine {
        var width: Int
        /// The widths of the row, state, credits and file columns; the reason takes the rest.
        var widths: [Int] { width >= 110 ? [20, 17, 9, 24] : [20, 17, 9] }
        static let credits = 2

        var header: String { fit(["row", "state", "credits"] + (widths.count > 3 ? ["file"] : []) + ["reason"]) }

        func line(_ job: ReportJob) -> String {
            func text(_ name: String) -> String {
                guard let index = ReportJob.columns.firstIndex(of: name) else { return "" }
                switch job.values[index] {
                case .none: return ""
                case let .text(text): return text
                case let .number(number, decimals): return ReportRenderer.decimal(number, places: decimals)
                }
            }
            let take = text("take")
            let row = (job.keyedByContent ? "line \(text("source_line"))" : text("row_key"))
                + (take == "1" ? "" : " #\(take)")
            let charged = text("conversion_cost")
            let estimate = text("credit_estimate")
            let credits = charged.isEmpty ? (estimate.isEmpty ? "" : "~" + estimate) : charged
            let file = text("downloaded_file").split(separator: "/").last.map(String.init) ?? ""
            let state = JobState(rawValue: text("state"))?.words ?? text("state")
            return fit([row, state, credits] + (widths.count > 3 ? [file] : []) + [text("reason")])
        }

        /// The cells padded to their widths (the credits right-aligned), the last one cut to fit.
        private func fit(_ cells: [String]) -> String {
            var line = ""
            for (index, cell) in cells.enumerated() {
                let flat = cell.replacingOccurrences(of: "\n", with: " ")
                guard index < widths.count else {
                    line += flat
                    continue
                }
                let columnWidth = widths[index]
                let shown = flat.count > columnWidth ? String(flat.prefix(columnWidth - 1)) + "…" : flat
                let padding = String(repeating: " ", count: columnWidth - shown.count)
                line += (index == Self.credits ? padding + shown : shown + padding) + "  "
            }
            if line.count > width { line = String(line.prefix(max(width - 1, 1))) + "…" }
            return line.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) + "\n"
        }
    }

    /// A number with a fixed count of decimals, without String(format:), which is slow
    /// enough to matter over a million rows.
    static func decimal(_ value: Double, places: Int) -> String {
        guard value.isFinite else { return "" }
        if places == 0 { return String(Int64(value.rounded())) }
        let scale = places == 2 ? 100.0 : Foundation.pow(10, Double(places))
        let scaled = Int64((abs(value) * scale).rounded())
        let whole = scaled / Int64(scale)
        let fraction = String(scaled % Int64(scale))
        let sign = value < 0 && scaled != 0 ? "-" : ""
        return sign + String(whole) + "." + String(repeating: "0", count: places - fraction.count) + fraction
    }

    public static func writeJobsFooter(format: ReportFormat, to out: TextOutput) throws {
        if format == .json { try out.write("\n]}\n") }
    }

    // MARK: CSV

    /// RFC 4180, and text that a spreadsheet would run as a formula is prefixed with '.
    static func csvCell(_ cell: Cell) -> String {
        var text = cell.text
        if case .text = cell, let first = text.utf8.first,
            first == UInt8(ascii: "=") || first == UInt8(ascii: "+") || first == UInt8(ascii: "-")
                || first == UInt8(ascii: "@") || first == 0x09 || first == 0x0D
        {
            text = "'" + text
        }
        if text.utf8.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D }
        ) {
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return text
    }

    // MARK: HTML

    static func escapeHTML(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static let stateColors: [String: String] = [
        "pending": "#9aa5b1", "submitting": "#f0b429", "submitted": "#2680c2", "ambiguous": "#e12d39",
        "failed": "#7b1e1e", "invalid": "#616e7c", "completed": "#27ab83", "generation_failed": "#ad4e00",
        "remote_missing": "#8e6a9b"
    ]

    static func html(
        _ report: SpendReport, timeline: [CreditPoint], failures: [FailedJob], title: String, generatedAt: String
    ) -> String {
        // The columns that matter most, as on a terminal: the page must fit a laptop and a phone.
        let table = terminalTable(report, wide: false)
        var rows = "<tr>" + table.header.map { "<th>\(escapeHTML($0.text))</th>" }.joined() + "</tr>\n"
        for (index, row) in table.rows.enumerated() {
            let isTotal = index == table.rows.count - 1
            rows +=
                (isTotal ? "<tr class=\"total\">" : "<tr>")
                + row.map { cell in
                    if case .number = cell { return "<td class=\"n\">\(escapeHTML(cell.text))</td>" }
                    return "<td>\(escapeHTML(cell.text))</td>"
                }.joined() + "</tr>\n"
        }
        let t = report.total
        let note = notes(t).map { "<p class=\"note\">\(escapeHTML($0))</p>" }.joined(separator: "\n")
        let inDoubtCard = t.inDoubt > 0 ? "<div>Requests in doubt<b>\(t.inDoubt)</b></div>\n" : ""
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <title>\(escapeHTML(title))</title>
            <style>
            body { font: 15px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2933; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; }
            h1 { font-size: 1.5rem; margin-bottom: .25rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
            .meta, .note { color: #52606d; }
            .summary { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1rem 0; }
            .summary div { border: 1px solid #cbd2d9; border-radius: 6px; padding: .5rem .9rem; flex: 1 1 8rem; max-width: 14rem; }
            .summary b { display: block; font-size: 1.3rem; }
            .scroll { overflow-x: auto; max-width: 100%; }
            table { border-collapse: collapse; width: 100%; font-size: .85rem; }
            th, td { border-bottom: 1px solid #e4e7eb; padding: .3rem .5rem; text-align: left; white-space: nowrap; }
            td.n { text-align: right; font-variant-numeric: tabular-nums; }
            tr.total td { font-weight: bold; border-top: 2px solid #1f2933; }
            svg { width: 100%; height: auto; display: block; }
            .chart { position: relative; }
            .chart .y { position: absolute; left: 0; font-size: 12px; color: #52606d; line-height: 1; }
            .chart .axis { position: relative; height: 1.4em; font-size: 12px; color: #52606d; }
            .chart .axis span { position: absolute; white-space: nowrap; }
            td.wrap { white-space: normal; min-width: 9rem; }
            .legend span { display: inline-block; margin-right: 1rem; }
            .legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: middle; }
            @media (max-width: 600px) { body { margin: 1rem auto; font-size: 14px; } .summary { gap: .5rem; }
              table.failed th { display: none; } table.failed tr { display: block; border-bottom: 1px solid #e4e7eb; padding: .3rem 0; }
              table.failed td { display: block; border: 0; padding: .05rem .5rem; white-space: normal; }
              table.failed td:first-child { font-weight: bold; } }
            @media print { body { margin: 0; max-width: none; } .scroll { overflow: visible; } table { font-size: 9pt; } h2 { break-after: avoid; } svg { break-inside: avoid; } }
            </style>
            </head>
            <body>
            <h1>\(escapeHTML(title))</h1>
            <p class="meta">Generated \(escapeHTML(generatedAt)) from the soundbatch ledger.</p>
            <div class="summary">
            <div>Credits charged<b>\(money(t.creditsCharged))</b></div>
            <div>Credits estimated<b>\(money(t.creditsEstimated))</b></div>
            <div>Jobs<b>\(t.jobs)</b></div>
            <div>No charge yet<b>\(t.unchargedJobs)</b></div>
            \(inDoubtCard)</div>
            \(note)
            <h2>Totals by \(escapeHTML(report.grouping))</h2>
            <div class="scroll"><table>
            \(rows)</table></div>
            <h2>Cumulative credits</h2>
            \(chart(timeline))
            <h2>Jobs per state</h2>
            \(stateBar(t))
            \(failedList(failures, of: JobState.failedForGood.map { t.states[$0.rawValue, default: 0] }.reduce(0, +)))
            </body>
            </html>

            """
    }

    /// Two lines, credits estimated and charged, over time. The labels are HTML beside the
    /// drawing, so that they keep their size on a phone, where the drawing shrinks.
    static func chart(_ points: [CreditPoint]) -> String {
        guard points.count > 0 else { return "<p class=\"note\">Nothing submitted yet.</p>" }
        let width = 800.0
        let height = 240.0
        let left = 80.0
        let top = 8.0
        let right = 24.0
        let top_ = max(points.map { max($0.estimated, $0.charged) }.max() ?? 1, 0.01)
        let times = points.map { seconds(of: $0.time) }
        let first = times.min() ?? 0
        let span = max((times.max() ?? 0) - first, 1)
        func x(_ time: Double) -> Double { left + (width - left - right) * (time - first) / span }
        func y(_ value: Double) -> Double { top + (height - top) * (1 - value / top_) }
        func line(_ value: (CreditPoint) -> Double) -> String {
            zip(times, points).map { String(format: "%.1f,%.1f", x($0), y(value($1))) }.joined(separator: " ")
        }
        let ticks = timeTicks(from: first, to: first + span).map { tick in
            // A label near an edge is set inside it, not centred over it.
            let at = x(tick.time) / width * 100
            let shift = at > 88 ? -100 : at < 12 ? 0 : -50
            return String(
                format: "<span style=\"left:%.2f%%;transform:translateX(%d%%)\">%@</span>", at, shift, tick.label)
        }.joined()
        let grid = [0.5, 1].map { fraction in
            "<line x1=\"\(left)\" y1=\"\(y(top_ * fraction))\" x2=\"\(width - right)\" y2=\"\(y(top_ * fraction))\" stroke=\"#e4e7eb\"/>"
        }.joined()
        return """
            <div class="chart">
            <svg viewBox="0 0 \(Int(width)) \(Int(height))" role="img" aria-label="Cumulative credits estimated and charged over time">
            \(grid)
            <line x1="\(left)" y1="\(y(0))" x2="\(width - right)" y2="\(y(0))" stroke="#9aa5b1"/>
            <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(y(0))" stroke="#9aa5b1"/>
            <polyline fill="none" stroke="#2680c2" stroke-width="2" points="\(line(\.estimated))"/>
            <polyline fill="none" stroke="#27ab83" stroke-width="2" stroke-dasharray="6 3" points="\(line(\.charged))"/>
            </svg>
            <span class="y" style="top:0">\(money(top_))</span>
            <span class="y" style="top:calc(50% - 0.7em)">\(money(top_ / 2))</span>
            <div class="axis">\(ticks)</div>
            </div>
            <p class="legend"><span><i style="background:#2680c2"></i>estimated (by submission)</span><span><i style="background:#27ab83"></i>charged (by completion)</span><span>times in UTC</span></p>
            """
    }

    /// Seconds since 1970 of a ledger time (to the second, UTC).
    static func seconds(of time: String) -> Double {
        let text = time.hasSuffix("Z") ? String(time.prefix(19)) + "Z" : time + "Z"
        return (try? Date.ISO8601FormatStyle().parse(text))?.timeIntervalSince1970 ?? 0
    }

    /// A few round times between `start` and `end`, labelled as times of day (UTC), or as
    /// dates when the span is long.
    static func timeTicks(from start: Double, to end: Double) -> [(time: Double, label: String)] {
        // A span of a day or more is told in dates: times of day alone would repeat.
        let hours: [Double] = [5, 10, 15, 30, 60, 300, 900, 1800, 3600, 10_800, 21_600]
        let days: [Double] = [86_400, 604_800, 2_592_000, 31_536_000]
        let steps = end - start < 86_400 ? hours : days
        let step = steps.first { (end - start) / $0 <= 5 } ?? steps.last!
        let format = DateFormatter()
        format.locale = Locale(identifier: "en_US_POSIX")
        format.timeZone = TimeZone(identifier: "UTC")
        format.dateFormat = step >= 86_400 ? "MMM d" : step >= 60 ? "HH:mm" : "HH:mm:ss"
        var ticks: [(Double, String)] = []
        var time = (start / step).rounded(.up) * step
        while time <= end {
            ticks.append((time, format.string(from: Date(timeIntervalSince1970: time))))
            time += step
        }
        return ticks
    }

    /// The jobs that failed for good, with why: the first `jobs` of `count`.
    static func failedList(_ jobs: [FailedJob], of count: Int) -> String {
        guard count > 0 else { return "" }
        let rows = jobs.map { job in
            let prompt = job.prompt.count > 60 ? String(job.prompt.prefix(59)) + "…" : job.prompt
            return "<tr><td>\(escapeHTML(job.row))</td><td class=\"wrap\">\(escapeHTML(prompt))</td>"
                + "<td>\(escapeHTML(job.state.words))</td>"
                + "<td class=\"wrap\">\(escapeHTML(job.reason))</td></tr>"
        }.joined(separator: "\n")
        let more =
            count > jobs.count
            ? "<p class=\"note\">… and \(count - jobs.count) more: "
                + "<code>soundbatch report --jobs</code> lists every one.</p>" : ""
        return """
            <h2>Failed jobs (\(count))</h2>
            <div class="scroll"><table class="failed">
            <tr><th>row</th><th>prompt</th><th>state</th><th>reason</th></tr>
            \(rows)
            </table></div>
            \(more)
            """
    }

    /// One bar split by state.
    static func stateBar(_ total: SpendTotals) -> String {
        guard total.jobs > 0 else { return "<p class=\"note\">No jobs.</p>" }
        var x = 0.0
        var parts = ""
        var legend = ""
        for state in JobState.allCases {
            let count = total.states[state.rawValue, default: 0]
            guard count > 0 else { continue }
            let width = 800.0 * Double(count) / Double(total.jobs)
            let color = stateColors[state.rawValue] ?? "#000"
            let words = state.words
            parts += String(
                format:
                    "<rect x=\"%.2f\" y=\"0\" width=\"%.2f\" height=\"28\" fill=\"%@\"><title>%@: %d</title></rect>",
                x, width, color, words, count)
            legend += "<span><i style=\"background:\(color)\"></i>\(words) \(count)</span>"
            x += width
        }
        return """
            <svg viewBox="0 0 800 28" role="img" aria-label="Jobs per state">\(parts)</svg>
            <p class="legend">\(legend)</p>
            """
    }
}
