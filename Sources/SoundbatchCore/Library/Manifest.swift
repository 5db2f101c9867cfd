import Foundation
import SoundbatchAudio

/// A library file's line in `manifest.csv`: the sheet written back, one line a file.
struct ManifestLine: Sendable {
    var entry: LibraryPlan.Entry
    var rendered: Rendered
}

/// `manifest.csv`: file, row, take, prompt, the row's own columns (by their names; one that
/// shares a name with a field of the manifest is written `column:NAME`), verdict, credits
/// charged, task ID, duration, measured loudness and true peak before and after, the gain
/// applied, whether the peak ceiling held it, and what a check found wrong with it (when
/// flagged sounds were asked for); with `--suggest-category`, the CatIDs proposed. UTF-8 with a byte-order mark, lines ended CR LF, as Excel
/// opens it. Written whole, then renamed into place.
enum Manifest {
    static let leading = ["file", "row", "take", "prompt"]
    static let trailing = [
        "verdict", "credits_charged", "task_id", "duration_seconds", "loudness_before_lufs", "true_peak_before_dbtp",
        "loudness_after_lufs", "true_peak_after_dbtp", "gain_db", "held_by_ceiling",
        "findings"
    ]

    /// With `--suggest-category`: the best CatID proposed, the prompt's words that chose it,
    /// and the next two.
    static let suggestions = ["suggested_catid", "suggested_because", "suggested_also"]

    static func write(_ lines: [ManifestLine], columns: [String], suggesting: Bool, to path: String) throws {
        let fields = Set(leading + trailing + suggestions)
        let header =
            leading + columns.map { fields.contains($0) ? ReportJob.ownColumnPrefix + $0 : $0 } + trailing
            + (suggesting ? suggestions : [])
        // A byte-order mark: Excel reads a CSV file as UTF-8 only with one (accents intact).
        var text = "\u{FEFF}" + header.map { ReportRenderer.csvCell(.text($0)) }.joined(separator: ",") + "\r\n"
        func number(_ value: Double?, places: Int) -> ReportRenderer.Cell {
            .number(value.map { ReportRenderer.decimal($0, places: places) } ?? "")
        }
        for line in lines {
            let sound = line.entry.sound
            let own = Dictionary(sound.columns.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
            let rendered = line.rendered
            let cells: [ReportRenderer.Cell] =
                [.text(line.entry.file), .text(sound.row), .number(String(sound.take)), .text(sound.prompt)]
                + columns.map { .text(own[$0] ?? "") }
                + [
                    .text(sound.verdict?.rawValue ?? ""), number(sound.credits, places: 2), .text(sound.taskID),
                    number(rendered.seconds, places: 3), number(rendered.before.integrated, places: 2),
                    number(rendered.before.truePeak, places: 2), number(rendered.after.integrated, places: 2),
                    number(rendered.after.truePeak, places: 2), number(rendered.gain, places: 2),
                    .text(rendered.heldByCeiling ? "yes" : ""), .text(Finding.text(sound.findings))
                ]
                + (suggesting ? suggested(line.entry.suggested) : [])
            text += cells.map(ReportRenderer.csvCell).joined(separator: ",") + "\r\n"
        }
        let file = try AtomicFile(path: path)
        try Array(text.utf8).withUnsafeBytes { try file.write($0) }
        try file.commit(sync: false)
    }

    static func suggested(_ proposals: [(category: UCSCategory, because: [String])]) -> [ReportRenderer.Cell] {
        guard let best = proposals.first else { return [.text(""), .text(""), .text("")] }
        return [
            .text(best.category.catID), .text(best.because.joined(separator: " ")),
            .text(proposals.dropFirst().map(\.category.catID).joined(separator: " "))
        ]
    }
}
