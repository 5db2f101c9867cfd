import Foundation

/// Runs statements: a backend, each statement on its own, or one transaction of it.
public protocol SQLRunner: Sendable {
    /// Runs one statement and returns its rows (none for a change without RETURNING).
    func rows(_ statement: SQL) async throws -> [LedgerRow]
}

extension SQLRunner {
    public func run(_ statement: SQL) async throws { _ = try await rows(statement) }

    public func row(_ statement: SQL) async throws -> LedgerRow? { try await rows(statement).first }

    /// The first column of the statement's first row.
    public func value<T: LedgerDecodable>(_ statement: SQL, as type: T.Type = T.self) async throws -> T {
        guard let row = try await rows(statement).first, let first = row.columns.names.first else {
            throw LedgerError.failed(reason: "a statement that gives one row gave none")
        }
        return try row[first]
    }
}

/// What a backend of the ledger implements: statements in its database, in its
/// transactions, and what truly differs between a file on one machine and a server shared
/// by a team (who may take a job, leases, the feed's writer, the spend scan). Every rule of
/// `LedgerStore` is written once over this, in the `Ledger+….swift` files beside it.
public protocol LedgerBackend: LedgerStore, SQLRunner {
    var dialect: SQLDialect { get }

    /// Runs `body` in one transaction, committed before this returns (rolled back if it
    /// throws): SQLite's BEGIN IMMEDIATE, PostgreSQL's with rows locked as the statements
    /// ask (`SQLDialect.lockingRows`). On a server a transaction the server dropped is made
    /// again, so `body` must bear running twice.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLRunner) async throws -> T) async throws -> T

    /// Runs one statement, handing its rows to `body` as they come, never all at once.
    func forEachRow(_ statement: SQL, _ body: (LedgerRow) throws -> Void) async throws

    /// The jobs `claim` asks for, taken by this process: on a server, those no live runner
    /// holds (or this one), skipping those another runner is claiming this moment, marked as
    /// this runner's; on SQLite, one process sends, and they are simply read. In id order.
    func claim(_ claim: JobClaim) async throws -> [LedgerRow]

    /// The test of whether job `job` (its alias in the statement) is held as `holder` says.
    func held(_ job: String, by holder: JobHolder) -> SQL

    /// The runner this process is on a shared ledger while it sends or follows; nil on SQLite.
    var runnerID: Int64? { get }

    /// Throws when the ledger is no longer where it was opened (SQLite: its file deleted or
    /// replaced): called before a request is marked, so that none leaves unrecorded.
    func checkStillThere() throws
}

/// Who holds a job, as the rules ask it.
public enum JobHolder: Sendable {
    /// This runner, or no live one: the job is free for this runner to take.
    case meOrNobody
    /// Not this runner, and no live one: left behind by a runner that died.
    case nobodyLive
}

/// Jobs to claim: those of `filter` (over `jobs j`) held as `holder` says, up to `limit`,
/// as `columns`.
public struct JobClaim: Sendable {
    public var columns: SQL
    public var filter: SQL
    public var holder: JobHolder
    public var limit: Int?

    public init(columns: SQL, filter: SQL, holder: JobHolder, limit: Int? = nil) {
        self.columns = columns
        self.filter = filter
        self.holder = holder
        self.limit = limit
    }
}

extension LedgerBackend {
    /// A read that may take long over many jobs (a report's, a review's): its rows, through
    /// `forEachRow`, which a server never gives up on for being slow.
    public func scan(_ statement: SQL) async throws -> [LedgerRow] {
        var rows: [LedgerRow] = []
        try await forEachRow(statement) { rows.append($0) }
        return rows
    }

    public func checkStillThere() throws {}

    /// Several runners share a key's pace only on a shared ledger.
    public func sharedPace(forKey fingerprint: String, _ requests: PacedRequests) async throws -> (any SharedPace)? {
        nil
    }

    /// Only PostgreSQL numbers new rows from counters of its own.
    public func renumberAfterAdding() async throws {}
}
