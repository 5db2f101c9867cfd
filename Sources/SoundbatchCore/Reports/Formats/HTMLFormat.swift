import Foundation

/// One self-contained page (`report.html`, with its style): totals, a chart, jobs per
/// state, failures.
extension ReportRenderer {

    static func escapeHTML(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static let stateColors: [String: String] = [
        "pending": "#9aa5b1", "submitting": "#f0b429", "submitted": "#2680c2", "in_doubt": "#e12d39",
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
        var inDoubtCard = t.inDoubt > 0 ? "<div>Requests in doubt<b>\(t.inDoubt)</b></div>\n" : ""
        if t.settledByCallback > 0 { inDoubtCard += "<div>Settled by callback<b>\(t.settledByCallback)</b></div>\n" }
        if t.paidTwice > 0 { inDoubtCard += "<div>Paid twice<b>\(t.paidTwice)</b></div>\n" }
        return PageTemplate(PackageResources.report_html).filled([
            "title": escapeHTML(title), "generated": escapeHTML(generatedAt), "charged": money(t.creditsCharged),
            "estimated": money(t.creditsEstimated), "jobs": String(t.jobs), "uncharged": String(t.unchargedJobs),
            "doubt": inDoubtCard, "notes": note, "grouping": escapeHTML(report.grouping), "rows": rows,
            "chart": chart(timeline), "states": stateBar(t),
            "failed": failedList(
                failures, of: JobState.failedForGood.map { t.states[$0.rawValue, default: 0] }.reduce(0, +))
        ])
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
            <div class="scroll" tabindex="0" role="region" aria-label="Failed jobs"><table class="failed">
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
