import Foundation

/// `report --jobs`: a line a take, in every format but HTML.
extension ReportRenderer {

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
                switch (cell, job.values[position]) {
                case let (_, .text(text)) where position == ReportJob.findingsPosition:
                    // A list of the findings' names: [] for a sound checked and found right.
                    object +=
                        "[" + Finding.set(fromText: text).sorted().map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                        + "]"
                case let (.number(text), _): object += text
                case let (.text(text), _) where text.isEmpty: object += "null"
                case let (.text(text), _): JSON.appendString(text, to: &object)
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
            let row =
                (job.keyedByContent ? "line \(text("source_line"))" : text("row_key"))
                + (take == "1" ? "" : " #\(take)")
            let charged = text("conversion_cost")
            let estimate = text("credit_estimate")
            let credits = charged.isEmpty ? (estimate.isEmpty ? "" : "~" + estimate) : charged
            let file = text("downloaded_file").split(separator: "/").last.map(String.init) ?? ""
            let state = JobState(rawValue: text("state"))?.words ?? text("state")
            // A sound's reason to be looked at: what a check found wrong with it.
            let findings = Finding.set(fromText: text("findings")).sorted().map(\.words)
            let reason =
                text("reason").isEmpty && !findings.isEmpty
                ? "found " + findings.joined(separator: ", ") : text("reason")
            return fit([row, state, credits] + (widths.count > 3 ? [file] : []) + [reason])
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
}
