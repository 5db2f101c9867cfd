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

/// How a feed keys the rows of a file without an `id` column: the hash of a row's content
/// (its stem, "~HASH") and its place among the identical rows of the file: "~HASH-1",
/// "~HASH-2". A row takes the first of these that no earlier row of the same file took;
/// a key the ledger holds from an earlier feed of the file is the same row again.
/// Both backends' feeds go by this, each testing in its own way whether a key is free.
public struct ContentKeys {
    /// Stems given more than once in this file, and the highest place given: only
    /// duplicates land here, so memory stays flat for ordinary files.
    private var highest: [String: Int] = [:]

    public init() {}

    /// The key of the `place`th row with content `stem`.
    public static func key(_ stem: String, _ place: Int) -> String { "\(stem)-\(place)" }

    /// The place to try first for a row with content `stem`: where the file's last such row
    /// went (taken already, unless that row left it), else the first.
    public func firstPlace(_ stem: String) -> Int { highest[stem] ?? 1 }

    /// A row with content `stem` took `place`.
    public mutating func took(_ stem: String, _ place: Int) {
        if place > 1 { highest[stem] = place }
    }
}
