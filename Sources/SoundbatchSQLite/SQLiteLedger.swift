import CSQLiteSetup
import Foundation
import GRDB
import SoundbatchCore

/// The ledger in one SQLite file: every batch, job and HTTP attempt. The default backend,
/// for one person on one machine.
///
/// How it keeps the seam's promises: the file is in WAL mode with full syncs, so a commit
/// is on disk when it returns; each state change is one transaction; one sender at a time
/// holds a lock on a file beside it; a file deleted or replaced under a run stops all
/// sending. Errors leave as `LedgerError`, never as SQLite's own.
public final class SQLiteLedger: LedgerStore {
    public let path: String
    public var location: String { path }
    public var isShared: Bool { false }

    public func sharedPace(forKey fingerprint: String, _ requests: PacedRequests) async throws -> (any SharedPace)? {
        nil
    }
    let database: DatabaseQueue
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
                reason: "the folder \(folder) does not exist; make it first (mkdir -p \(folder)), or give --ledger a path in a folder that does")
        }
        throw LedgerError.cannotOpen(path: path, reason: String(cString: strerror(code)))
    }

    public func batchID(named name: String) async throws -> Int64 {
        try await read { try Self.batchID($0, named: name) }
    }

    /// The one lookup of a batch by name: its id, or an error naming the batches there are.
    static func batchID(_ db: Database, named name: String) throws -> Int64 {
        if let id = try findBatch(db, named: name) { return id }
        throw LedgerError.noSuchBatch(
            name, known: try String.fetchAll(db, sql: "SELECT name FROM batches ORDER BY name"))
    }

    static func findBatch(_ db: Database, named name: String) throws -> Int64? {
        try Int64.fetchOne(db, sql: "SELECT id FROM batches WHERE name = ?", arguments: [name])
    }

    // Every access goes through these, so that SQLite's errors leave as LedgerError.

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await translatingErrors { try await database.read(body) }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await translatingErrors { try await database.write(body) }
    }

    func readNow<T>(_ body: (Database) throws -> T) throws -> T {
        try translatingErrorsNow { try database.read(body) }
    }

    func writeWithoutTransaction<T>(_ body: (Database) throws -> T) throws -> T {
        try translatingErrorsNow { try database.writeWithoutTransaction(body) }
    }

    private func translatingErrors<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as DatabaseError { throw Self.ledgerError(error) }
    }

    private func translatingErrorsNow<T>(_ body: () throws -> T) throws -> T {
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
