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

    /// The file read, for messages.
    let path: String
    /// The header's length-like column (`Header.lengthLike`), while every value in it is a
    /// whole number of seconds from 1 to 600 or empty, and how many are numbers.
    private var lengthLike: (name: String, numbers: Int)?

    /// Starts reading `reader` (owned by the pipeline from now on) with `header`.
    init(reader: CSVReader, header: Header) {
        path = reader.path
        lengthLike = header.lengthLike.map { ($0.name, 0) }
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
                // A line of only spaces or empty fields (a spreadsheet's empty row) is blank.
                if record.problem == nil, record.fields.allSatisfy({ $0.trimmed.isEmpty }) { continue }
                if let column = header.lengthLike, lengthLike != nil {
                    let value = column.index < record.fields.count ? record.fields[column.index].trimmed : ""
                    if let seconds = Int(value), (1...600).contains(seconds) {
                        lengthLike?.numbers += 1
                    } else if !value.isEmpty {
                        lengthLike = nil
                    }
                }
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

    /// A column kept as metadata that holds lengths (its name says so and each value is a
    /// whole number of seconds in range): read once the file has been read to its end.
    var unmappedLengthColumn: String? {
        condition.lock()
        defer { condition.unlock() }
        return lengthLike.flatMap { $0.numbers > 0 ? $0.name : nil }
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

/// Hands a non-Sendable value to the one thread that will use it from then on.
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
