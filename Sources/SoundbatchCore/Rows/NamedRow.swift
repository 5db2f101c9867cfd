/// A row of a batch as a person names it (`--job`): by its id, or its line in the sheet. A row
/// asked for several sounds (`run --takes`) is several jobs, one a variation, and its takes
/// are numbered together.
public struct NamedRow: Sendable {
    public var batchID: Int64
    /// What the person called it.
    public var name: String
    /// Its jobs and every take of each.
    public var row: ReviewRow

    /// Every take of the row, with its job.
    public var takes: [(job: Int64, take: ReviewTake)] { row.takes.map { ($0.jobID, $0) } }
}

/// A name that is no row of the batch, or more than one.
public enum RowNameError: CommandError, Equatable {
    case noSuchRow(batch: String, name: String)
    case severalRows(batch: String, name: String, count: Int)

    public var description: String {
        switch self {
        case let .noSuchRow(batch, name): "no row of batch \"\(batch)\" has the id or CSV line \(name)"
        case let .severalRows(batch, name, count):
            "\(count) rows of batch \"\(batch)\" answer to \(name); name one by its id"
        }
    }

    public var exitStatus: ExitStatus { .usage }
}

extension LedgerStore {
    /// The row of `batch` that `name` names, with its jobs and their takes.
    public func namedRow(_ name: String, batch: String) async throws -> NamedRow {
        let batchID = try await batchID(named: batch)
        let ids = try await jobIDs(batchID: batchID, row: name)
        let rows = try await reviewRows(batchID: batchID, ReviewQuery(jobIDs: ids, limit: max(ids.count, 1))).rows
        guard let row = rows.first else { throw RowNameError.noSuchRow(batch: batch, name: name) }
        guard rows.count == 1 else { throw RowNameError.severalRows(batch: batch, name: name, count: rows.count) }
        return NamedRow(batchID: batchID, name: name, row: row)
    }
}
