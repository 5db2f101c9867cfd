import Foundation

/// The table a terminal shows, columns aligned.
extension ReportRenderer {
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
}
