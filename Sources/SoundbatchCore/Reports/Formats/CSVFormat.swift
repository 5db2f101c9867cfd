import Foundation

/// RFC 4180, safe to open in a spreadsheet.
extension ReportRenderer {

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
}
