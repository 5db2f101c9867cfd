/// A set of job ids, a bit each: ids are dense, from 1. 125 KB for a million.
public struct IDSet: Sendable {
    private var words: [UInt64] = []

    public init() {}

    public func contains(_ id: Int64) -> Bool {
        let word = Int(id >> 6)
        return word < words.count && words[word] & (1 << UInt64(id & 63)) != 0
    }

    public mutating func insert(_ ids: ClosedRange<Int64>) {
        let needed = Int(ids.upperBound >> 6) + 1
        if needed > words.count { words += repeatElement(0, count: max(needed - words.count, words.count)) }
        for id in ids { words[Int(id >> 6)] |= 1 << UInt64(id & 63) }
    }

    /// The ids in the set as runs of consecutive ids, in order: a feed's rows as
    /// `ingest_rows` holds them.
    public var runs: [ClosedRange<Int64>] {
        var runs: [ClosedRange<Int64>] = []
        var start: Int64?
        for (index, word) in words.enumerated() {
            let base = Int64(index) << 6
            // Whole words of one kind are passed at once: the usual case for a feed.
            if word == 0, start == nil { continue }
            if word == ~0, start != nil { continue }
            for bit in 0..<Int64(64) {
                let isIn = word & (1 << UInt64(bit)) != 0
                if isIn, start == nil { start = base + bit }
                if !isIn, let first = start {
                    runs.append(first...base + bit - 1)
                    start = nil
                }
            }
        }
        if let first = start { runs.append(first...Int64(words.count) << 6 - 1) }
        return runs
    }
}
