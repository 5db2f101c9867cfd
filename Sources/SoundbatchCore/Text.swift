extension String {
    /// The text without leading and trailing white space (line breaks included).
    /// Foundation's `trimmingCharacters(in:)` goes through NSString and UTF-16 on Linux and
    /// took 30% of a million-row ingest; almost every field needs no trimming at all.
    public var trimmed: String {
        guard let first = utf8.first, let last = utf8.last else { return self }
        func maybeSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) || byte >= 0x80 }
        if !maybeSpace(first) && !maybeSpace(last) { return self }
        let scalars = unicodeScalars
        var start = scalars.startIndex
        var end = scalars.endIndex
        while start < end, scalars[start].properties.isWhitespace { start = scalars.index(after: start) }
        while end > start, scalars[scalars.index(before: end)].properties.isWhitespace {
            end = scalars.index(before: end)
        }
        return String(scalars[start..<end])
    }
}

extension String {
    /// The text in lines of at most `width` characters, broken at spaces, for an ordinary
    /// terminal: the first line begins with `indent`, the others with `indent` and two
    /// spaces more. A word longer than a line (a path, a command) stays whole.
    public func wrapped(width: Int = 100, indent: String = "") -> String {
        var lines: [String] = []
        var lead = indent
        var line = ""
        for word in split(separator: " ") {
            if !line.isEmpty, lead.count + line.count + 1 + word.count > width {
                lines.append(lead + line)
                lead = indent + "  "
                line = ""
            }
            line += line.isEmpty ? String(word) : " " + word
        }
        lines.append(lead + line)
        return lines.joined(separator: "\n")
    }
}
