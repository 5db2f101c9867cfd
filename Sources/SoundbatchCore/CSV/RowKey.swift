/// Stable keys for rows without an `id`.
///
/// The key must come out the same in every version and on every machine, or feeding a
/// file again would add its rows twice; Swift's `Hasher` is seeded per process, so this
/// is FNV-1a with 128 bits (no collision expected below ~10^18 rows).
enum RowKey {
    static func hash(_ text: String) -> String {
        var hash: UInt128 = 0x6c62272e07bb014262b821756295c58d
        let prime: UInt128 = 0x0000000001000000000000000000013B
        for byte in text.utf8 {
            hash ^= UInt128(byte)
            hash = hash &* prime
        }
        // Written out by hand: `String(_:radix:)` on a UInt128 took 3.3 s a million keys
        // here, against 0.1 s for this, and was most of the feed's time for a file without ids.
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: 32) { out in
            for index in 0..<32 {
                let nibble = Int(truncatingIfNeeded: hash >> (4 * (31 - index))) & 0xF
                out[index] = digits.utf8Start[nibble]
            }
            return 32
        }
    }
}

/// The little JSON soundbatch writes by hand, where building and encoding a dictionary
/// for each of a million rows would cost more than the rest of the ingest.
enum JSON {
    static func appendString(_ text: String, to out: inout String) {
        out += "\""
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += text  // the usual case: nothing to escape
        } else {
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

extension String {
    /// The text without leading and trailing white space (line breaks included).
    /// Foundation's `trimmingCharacters(in:)` goes through NSString and UTF-16 on Linux and
    /// took 30% of a million-row ingest; almost every field needs no trimming at all.
    public var trimmed: String {
        guard let first = utf8.first, let last = utf8.last else { return self }
        func maybeSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) || byte >= 0x80 }
        if !maybeSpace(first) && !maybeSpace(last) { return self }
        let scalars = unicodeScalars
        var start = scalars.startIndex, end = scalars.endIndex
        while start < end, scalars[start].properties.isWhitespace { start = scalars.index(after: start) }
        while end > start, scalars[scalars.index(before: end)].properties.isWhitespace { end = scalars.index(before: end) }
        return String(scalars[start..<end])
    }
}
