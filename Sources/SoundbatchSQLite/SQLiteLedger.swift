import CSQLiteSetup
import Foundation
import GRDB
import SoundbatchCore

/// The ledger's statements are the core's (GRDB has an `SQL` of its own).
typealias SQL = SoundbatchCore.SQL

/// The ledger in one SQLite file: every batch, job and HTTP attempt. The default backend,
/// for one person on one machine.
///
/// How it keeps the seam's promises: the file is in WAL mode with full syncs, so a commit
/// is on disk when it returns; each state change is one transaction (BEGIN IMMEDIATE: the
/// file is this process's until it ends); one sender at a time holds a lock on a file beside
/// it; a file deleted or replaced under a run stops all sending. Errors leave as
/// `LedgerError`, never as SQLite's own. The rules themselves are the core's (`LedgerBackend`).
public final class SQLiteLedger: LedgerBackend {
    public let path: String
    public var location: String { path }
    public var isShared: Bool { false }
    public var dialect: SQLDialect { .sqlite }
    /// One process sends: nobody else holds a job.
    public var runnerID: Int64? { nil }
    let database: DatabaseQueue
    /// The connection's user: a transaction spans several statements, each an await apart,
    /// and nothing else may run on the connection in between.
    private let connection = AsyncLock()
    /// The file's identity when opened, to notice it being deleted or replaced under us.
    private let fileIdentity: (device: UInt64, inode: UInt64)

    /// Opens the ledger, upgrading its schema as needed; with `create`, a missing ledger
    /// is created (mode 0600), else it is an error.
    public init(path: String, create: Bool = true) throws {
        Self.setUpSQLite
        self.path = path
        var info = stat()
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
            throw LedgerError.cannotOpen(
                path: path, reason: "it is a folder; give a file path, such as \(path)/soundbatch.sqlite")
        }
        if create {
            try Self.createPrivately(path)
        } else if !FileManager.default.fileExists(atPath: path) {
            throw LedgerError.missing(path: path)
        }
        let migrator = Self.migrator
        do {
            // Look before writing anything: a ledger from a newer version stays as it is.
            var lookOnly = Configuration()
            lookOnly.readonly = true
            lookOnly.busyMode = .timeout(10)
            let isFromTheFuture = try DatabaseQueue(path: path, configuration: lookOnly)
                .read { try migrator.hasBeenSuperseded($0) }
            if isFromTheFuture { throw LedgerError.fromTheFuture(path: path) }

            var configuration = Configuration()
            // A transaction is begun and ended by `transaction`, across several accesses.
            configuration.allowsUnsafeTransactions = true
            configuration.journalMode = .wal
            configuration.busyMode = .timeout(10)
            configuration.prepareDatabase { db in
                // For a new ledger only (an existing one keeps its size): a million-row feed
                // ran 12% faster on 16 KiB pages than on 4 KiB (six runs each), and the larger
                // pages a submission writes are nothing beside its request.
                try db.execute(sql: "PRAGMA page_size = 16384")
            }
            database = try DatabaseQueue(path: path, configuration: configuration)
            // GRDB picks NORMAL for WAL, which can lose the last commits on power loss.
            // A job marked `submitting` must be on disk before its request leaves.
            try database.writeWithoutTransaction { try $0.execute(sql: "PRAGMA synchronous = FULL") }
            try migrator.migrate(database)
        } catch let error as DatabaseError {
            var reason = error.message ?? "\(error)"
            if error.resultCode == .SQLITE_READONLY || error.resultCode == .SQLITE_CANTOPEN {
                reason += " (is the file, or its folder, read-only? soundbatch needs to write beside it)"
            }
            throw LedgerError.cannotOpen(path: path, reason: reason)
        }
        guard let identity = Self.identity(of: path) else { throw LedgerError.vanished(path: path) }
        fileIdentity = identity
    }

    private static func identity(of path: String) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }

    /// Throws if the ledger's file is no longer the one opened: writes would go to a
    /// deleted file and be lost with the process.
    public func checkStillThere() throws {
        guard let now = Self.identity(of: path), now == fileIdentity else { throw LedgerError.vanished(path: path) }
    }

    /// Sets SQLite up for the whole process, once, before the first ledger is opened.
    /// SQLite's memory statistics, which soundbatch never reads, take a lock around every
    /// allocation: a tenth of a large feed's time.
    private static let setUpSQLite: Void = {
        _ = soundbatch_sqlite_disable_memory_statistics()
    }()

    /// Creates an empty file readable by its owner only, unless one exists already.
    /// SQLite gives its -wal and -shm files the same permissions.
    private static func createPrivately(_ path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 {
            close(fd)
            return
        }
        let code = errno
        if code == EEXIST { return }
        let folder = (path as NSString).deletingLastPathComponent
        if code == ENOENT, !folder.isEmpty, !FileManager.default.fileExists(atPath: folder) {
            throw LedgerError.cannotOpen(
                path: path,
                reason:
                    "the folder \(folder) does not exist; make it first (mkdir -p \(folder)), or give --ledger a path in a folder that does"
            )
        }
        throw LedgerError.cannotOpen(path: path, reason: String(cString: strerror(code)))
    }

    // Every access goes through these, one user of the connection at a time, so that
    // SQLite's errors leave as LedgerError.

    public func rows(_ statement: SoundbatchCore.SQL) async throws -> [LedgerRow] {
        try await exclusively {
            try await self.translatingErrors {
                try await self.database.writeWithoutTransaction { try $0.rows(statement) }
            }
        }
    }

    public func transaction<T: Sendable>(
        _ body: @escaping @Sendable (any SQLRunner) async throws -> T
    ) async throws -> T {
        try await exclusively {
            try await self.translatingErrors {
                try await self.database.writeWithoutTransaction { try $0.execute(sql: "BEGIN IMMEDIATE") }
            }
            do {
                let result = try await body(self)
                try await self.uncancelled("COMMIT")
                return result
            } catch {
                try? await self.uncancelled("ROLLBACK")
                throw error
            }
        }
    }

    /// Ends the transaction even when the task is cancelled: a change made whole is kept,
    /// and one that failed is rolled back, never left open on the connection.
    private func uncancelled(_ statement: String) async throws {
        let database = self.database
        try await translatingErrors {
            try await Task {
                try await database.writeWithoutTransaction { db in
                    if db.isInsideTransaction { try db.execute(sql: statement) }
                }
            }.value
        }
    }

    /// Runs on the caller's thread, row by row through SQLite's C API (`FastStatement`):
    /// the report's per-job lines are its hot loop.
    public func forEachRow(_ statement: SoundbatchCore.SQL, _ body: (LedgerRow) throws -> Void) async throws {
        try await exclusively {
            try self.translatingErrorsNow {
                try self.database.writeWithoutTransaction { db in
                    let query = try FastStatement(db, sql: statement)
                    let columns = ResultColumns(query.columnNames)
                    try query.forEachRow([]) { try body(LedgerRow(columns: columns, values: $0.ledgerValues)) }
                }
            }
        }
    }

    /// One process sends and follows a SQLite ledger: the jobs are simply read.
    public func claim(_ claim: JobClaim) async throws -> [LedgerRow] {
        let limit: SQL = claim.limit.map { " LIMIT \($0)" } ?? ""
        return try await rows("SELECT \(claim.columns) FROM jobs j WHERE \(claim.filter) ORDER BY j.id\(limit)")
    }

    public func held(_ job: String, by holder: JobHolder) -> SoundbatchCore.SQL { "TRUE" }

    /// Runs `body` as the connection's only user; again within it, `body` runs at once.
    func exclusively<T>(_ body: () async throws -> T) async throws -> T {
        if Self.user == ObjectIdentifier(self) { return try await body() }
        await connection.lock()
        defer { connection.unlock() }
        return try await Self.$user.withValue(ObjectIdentifier(self)) { try await body() }
    }

    /// The ledger whose connection the current task holds.
    @TaskLocal private static var user: ObjectIdentifier?

    func translatingErrors<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as DatabaseError { throw Self.ledgerError(error) }
    }

    func translatingErrorsNow<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as DatabaseError { throw Self.ledgerError(error) }
    }

    static func ledgerError(_ error: DatabaseError) -> LedgerError {
        let hint =
            [.SQLITE_FULL, .SQLITE_IOERR].contains(error.resultCode)
            ? " (is the disk full, or the file size limited?); "
                + "the unfinished change was rolled back: free some space and run again"
            : ""
        return .failed(reason: "\(error.message ?? "\(error)")\(hint)")
    }
}

extension Database {
    /// Runs a statement, its values bound in order to SQLite's numbered parameters.
    func rows(_ statement: SQL) throws -> [LedgerRow] {
        let (text, values) = statement.rendered { number, _ in "?\(number)" }
        let prepared = try makeStatement(sql: text)
        let columns = ResultColumns(prepared.columnNames)
        let rows = try Row.fetchAll(prepared, arguments: StatementArguments(values.map(\.databaseValue)))
        return rows.map { row in LedgerRow(columns: columns, values: row.databaseValues.map(LedgerValue.init)) }
    }
}

extension SQLValue {
    var databaseValue: DatabaseValue {
        switch self {
        case let .integer(number): number.databaseValue
        case let .real(number): number.databaseValue
        case let .text(text): text.databaseValue
        case let .bytes(bytes): bytes.map { Data($0).databaseValue } ?? .null
        case .null: .null
        }
    }
}

extension LedgerValue {
    /// A SQLite value as the ledger holds it.
    init(_ value: DatabaseValue) {
        switch value.storage {
        case let .int64(number): self = .integer(number)
        case let .double(number): self = .real(number)
        case let .string(text): self = .text(text)
        case let .blob(data): self = .bytes([UInt8](data))
        case .null: self = .null
        }
    }
}
