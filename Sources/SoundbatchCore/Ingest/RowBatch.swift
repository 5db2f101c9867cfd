/// Rows checked on the reading thread, on their way to the feed. Their text lies end to end
/// in one buffer, so the feed's thread, the slower of the two, hands the database bytes and never
/// holds a Swift string: retaining, releasing and freeing each row's strings there took
/// about a sixth of its time (perf samples, a million rows).
public struct RowBatch {
    public struct Row {
        public var line: Int
        /// The id; or, when the row has none, the first key for its content: "~HASH-1".
        public var key: Range<Int>
        /// When the row has no id: the length of the key's stem, "~HASH".
        public var contentStemCount: Int?
        public var prompt: Range<Int>
        public var audioLength: Int?
        public var webhookURL: Range<Int>?
        public var metadata: Range<Int>?
        public var problem: Range<Int>?

        /// A row with a problem is recorded only with --skip-invalid, and set aside.
        public var state: JobState { problem == nil ? .pending : .invalid }
    }

    public private(set) var text: [UInt8] = []
    public private(set) var rows: [Row] = []

    mutating func append(_ row: JobRow, line: Int) {
        func put(_ string: String) -> Range<Int> {
            let start = text.count
            text.append(contentsOf: string.utf8)
            return start..<text.count
        }
        var key: Range<Int>
        var contentStemCount: Int?
        if let id = row.key {
            key = put(id)
        } else {
            // No id: the content names the row (`ContentKeys`).
            let stem = "~" + RowKey.hash(row.content)
            key = put(ContentKeys.key(stem, 1))
            contentStemCount = stem.utf8.count
        }
        rows.append(
            Row(
                line: line, key: key, contentStemCount: contentStemCount, prompt: put(row.prompt),
                audioLength: row.audioLength, webhookURL: row.webhookURL.map(put), metadata: row.metadata.map(put),
                problem: row.problem.map(put)))
    }
}

extension String {
    /// The text of `range` in `bytes`: a row's field, out of its batch's buffer.
    public init(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
        self.init(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}
