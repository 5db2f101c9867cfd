import Foundation

/// File names that are safe on every file system, whatever a row's id says.
public enum FileNames {
    static let maxNameBytes = 100

    /// No path separators, no `..`, no control or reserved characters, no leading dot,
    /// at most 100 bytes; empty becomes `job-<id>`.
    public static func safeName(_ text: String, jobID: Int64) -> String {
        var name = ""
        for scalar in text.unicodeScalars {
            let forbidden = scalar.value < 0x20 || scalar.value == 0x7F || "/\\:*?\"<>|".unicodeScalars.contains(scalar)
            name.unicodeScalars.append(forbidden ? "_" : scalar)
        }
        name = name.trimmed
        while name.hasPrefix(".") { name.removeFirst() }
        while name.hasSuffix(".") { name.removeLast() }
        while name.utf8.count > maxNameBytes { name.removeLast() }
        let reserved = ["con", "prn", "aux", "nul", "com1", "lpt1"]
        if name.isEmpty || reserved.contains(name.lowercased()) { return "job-\(jobID)" }
        return name
    }

    /// Paths a file system that ignores case (macOS's, Windows') takes for one file: their
    /// Unicode letters folded, and composed characters written one way. The one rule for
    /// "another job's file has this name", in the ledger (`download_key`) and while
    /// downloads pick their names.
    public static func caseKey(_ path: String) -> String {
        path.precomposedStringWithCanonicalMapping.lowercased()
    }

    /// A short readable name from a prompt: "Rain on a tin roof" -> "rain-on-a-tin-roof".
    public static func slug(_ prompt: String) -> String {
        let words = prompt.lowercased().unicodeScalars.split { !CharacterSet.alphanumerics.contains($0) }
        var slug = ""
        for word in words {
            let next = slug.isEmpty ? String(word) : slug + "-" + String(word)
            if next.utf8.count > 40 { break }
            slug = next
        }
        return slug
    }

    static let audioExtensions = ["wav", "mp3", "flac", "ogg", "m4a", "aac", "opus", "webm"]
    static let byContentType = [
        "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/mpeg": "mp3",
        "audio/mp3": "mp3", "audio/flac": "flac", "audio/ogg": "ogg", "audio/mp4": "m4a",
        "audio/aac": "aac", "audio/opus": "opus", "audio/webm": "webm"
    ]

    /// From the URL's path when it names an audio type, else from the content type.
    public static func fileExtension(url: String, contentType: String?) -> String {
        let fromURL = (URLComponents(string: url)?.path as NSString?)?.pathExtension.lowercased() ?? ""
        if audioExtensions.contains(fromURL) { return fromURL }
        let type = contentType?.split(separator: ";").first.map { String($0).trimmed.lowercased() } ?? ""
        return byContentType[type] ?? "audio"
    }
}
