import Foundation

/// A Markdown table, ready to paste.
extension ReportRenderer {
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
}
