import Foundation

/// Reads and checks rows on a thread of its own while the feed writes the previous ones
/// into SQLite: on two cores the parsing (a third of a large feed) then costs no time.
///
/// The thread hands over batches through a small bounded queue, so memory stays flat,
/// and always ends before `drain` returns.
final class RowPipeline: @unchecked Sendable {
    enum Batch {
        case rows(RowBatch)
        case failed(CSVError)
    }

    private let condition = NSCondition()
    private var queue: [Batch] = []
    private var finished = false
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)
    private static let batchSize = 512
    private static let depth = 8

    /// Starts reading `reader` (owned by the pipeline from now on) with `header`.
    init(reader: CSVReader, header: Header) {
        let reader = UncheckedBox(reader)
        Thread.detachNewThread { [self] in
            produce(reader.value, header)
            done.signal()
        }
    }

    private func produce(_ reader: CSVReader, _ header: Header) {
        var batch = RowBatch()
        do {
            while let record = try reader.next() {
                batch.append(header.row(from: record), line: record.line)
                if batch.rows.count == Self.batchSize {
                    guard put(.rows(batch)) else { return }
                    batch = RowBatch()
                }
            }
            if !batch.rows.isEmpty { _ = put(.rows(batch)) }
        } catch let error as CSVError {
            if !batch.rows.isEmpty { _ = put(.rows(batch)) }
            _ = put(.failed(error))
        } catch {
            _ = put(.failed(.cannotRead(path: reader.path, reason: "\(error)")))
        }
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for room; false when the consumer has stopped listening.
    private func put(_ batch: Batch) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= Self.depth && !stopped { condition.wait() }
        if stopped { return false }
        queue.append(batch)
        condition.broadcast()
        return true
    }

    /// The next batch, or nil at the end of the file.
    func next() -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !finished { condition.wait() }
        if queue.isEmpty { return nil }
        condition.broadcast()
        return queue.removeFirst()
    }

    /// Stops the reading thread (if it is still going) and waits for it to end.
    func drain() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
        done.wait()
    }
}

/// Rows checked on the reading thread, on their way to the feed. Their text lies end to end
/// in one buffer, so the feed's thread, the slower of the two, hands SQLite bytes and never
/// holds a Swift string: retaining, releasing and freeing each row's strings there took
/// about a sixth of its time (perf samples, a million rows).
struct RowBatch {
    struct Row {
        var line: Int
        /// The id; or, when the row has none, the first key for its content: "~HASH-1".
        var key: Range<Int>
        /// When the row has no id: the length of the key's stem, "~HASH".
        var contentStemCount: Int?
        var prompt: Range<Int>
        var audioLength: Int?
        var webhookURL: Range<Int>?
        var metadata: Range<Int>?
        var problem: Range<Int>?

        /// A row with a problem is recorded only with --skip-invalid, and set aside.
        var state: JobState { problem == nil ? .pending : .invalid }
    }

    private(set) var text: [UInt8] = []
    private(set) var rows: [Row] = []

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
            // No id: the content names the row (see JobWriter).
            let stem = "~" + RowKey.hash(row.content)
            key = put(stem + "-1")
            contentStemCount = stem.utf8.count
        }
        rows.append(Row(
            line: line, key: key, contentStemCount: contentStemCount, prompt: put(row.prompt),
            audioLength: row.audioLength, webhookURL: row.webhookURL.map(put), metadata: row.metadata.map(put),
            problem: row.problem.map(put)))
    }
}

/// Hands a non-Sendable value to the one thread that will use it from then on.
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
