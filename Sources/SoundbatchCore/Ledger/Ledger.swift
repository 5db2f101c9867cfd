import CSQLiteSetup
import Foundation
import GRDB

/// The SQLite file that records every batch, job and HTTP attempt. It is the single
/// source of truth: a run can stop at any moment and carry on from it alone.
public final class Ledger: Sendable {
    public let path: String
    let database: DatabaseQueue
    /// The file's identity when opened, to notice it being deleted or replaced under us.
    private let fileIdentity: (device: UInt64, inode: UInt64)

    /// Resolves the ledger's path: the option, else `SOUNDBATCH_LEDGER`, else `./soundbatch.sqlite`.
    public static func resolvePath(option: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let option, !option.isEmpty { return option }
        if let fromEnvironment = environment["SOUNDBATCH_LEDGER"], !fromEnvironment.isEmpty { return fromEnvironment }
        return "soundbatch.sqlite"
    }

    /// Opens the ledger, upgrading its schema as needed; with `create`, a missing ledger
    /// is created (mode 0600), else it is an error.
    public init(path: String, create: Bool = true) throws {
        self.path = path
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

    /// Sets SQLite up for the whole process: call it once at start, before any ledger is
    /// opened. SQLite's memory statistics, which soundbatch never reads, take a lock around
    /// every allocation: a tenth of a large feed's time.
    public static func setUpSQLite() {
        _ = soundbatch_sqlite_disable_memory_statistics()
    }

    /// Creates an empty file readable by its owner only, unless one exists already.
    /// SQLite gives its -wal and -shm files the same permissions.
    private static func createPrivately(_ path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd); return }
        let code = errno
        if code == EEXIST {
            var info = stat()
            if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
                throw LedgerError.cannotOpen(path: path, reason: "it is a directory; give a file path with --ledger")
            }
            return
        }
        throw LedgerError.cannotOpen(path: path, reason: String(cString: strerror(code)))
    }

    /// Each migration upgrades older ledgers in place. Never edit a registered
    /// migration: add a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE batches (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE,
                    source_file TEXT,
                    created_at TEXT NOT NULL
                );
                -- One row each time a CSV file is fed into a batch.
                CREATE TABLE ingests (
                    id INTEGER PRIMARY KEY,
                    batch_id INTEGER NOT NULL REFERENCES batches(id),
                    source_file TEXT NOT NULL,
                    started_at TEXT NOT NULL,
                    new_jobs INTEGER NOT NULL DEFAULT 0,
                    known_jobs INTEGER NOT NULL DEFAULT 0
                );
                CREATE TABLE jobs (
                    id INTEGER PRIMARY KEY,
                    batch_id INTEGER NOT NULL REFERENCES batches(id),
                    row_key TEXT NOT NULL,
                    source_line INTEGER NOT NULL,
                    prompt TEXT NOT NULL,
                    audio_length INTEGER,
                    webhook_url TEXT,
                    metadata TEXT,                 -- the row's other columns, as a JSON object
                    state TEXT NOT NULL,
                    attempt_count INTEGER NOT NULL DEFAULT 0,
                    task_id TEXT,
                    conversion_id TEXT,
                    eta INTEGER,
                    credit_estimate REAL,
                    message TEXT,
                    last_error TEXT,
                    last_http_status INTEGER,
                    created_at TEXT NOT NULL,
                    submitted_at TEXT,
                    updated_at TEXT NOT NULL,
                    remote_status TEXT,
                    status_msg TEXT,
                    audio_url TEXT,
                    conversion_cost REAL,
                    completed_at TEXT,
                    download_path TEXT,
                    download_size INTEGER,
                    download_sha256 TEXT,
                    ingest_id INTEGER NOT NULL REFERENCES ingests(id),   -- the feed that created it
                    seen_ingest_id INTEGER NOT NULL                      -- the last feed whose file holds it
                );
                -- No index on state: it would cost a fifth of a large feed, and the
                -- dispatcher walks a batch's jobs in id order anyway.
                CREATE UNIQUE INDEX jobs_by_key ON jobs(batch_id, row_key);
                CREATE TABLE attempts (
                    id INTEGER PRIMARY KEY,
                    job_id INTEGER NOT NULL REFERENCES jobs(id),
                    kind TEXT NOT NULL,            -- submit, poll, download
                    started_at TEXT NOT NULL,
                    finished_at TEXT,
                    http_status INTEGER,
                    error TEXT,
                    latency_ms INTEGER
                );
                CREATE INDEX attempts_by_job ON attempts(job_id);
                """)
        }
        migrator.registerMigration("v2: find jobs by task_id") { db in
            // Webhooks name a task; without this each one would scan every job.
            // Partial: jobs not yet sent have no task, and a feed of a million rows should not pay for them.
            try db.execute(sql: "CREATE INDEX jobs_by_task ON jobs(task_id) WHERE task_id IS NOT NULL")
        }
        return migrator
    }

    /// Takes the ledger for this process alone, for as long as the returned lock lives.
    /// Only one process may send a ledger's jobs: a second one would take the first one's
    /// in-flight jobs for interrupted ones. The kernel lets go if the process dies.
    public func lockForSending() throws -> SendingLock {
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw LedgerError.cannotOpen(path: lockPath, reason: String(cString: strerror(errno)))
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            var holder = [UInt8](repeating: 0, count: 64)
            let count = pread(fd, &holder, 64, 0)
            close(fd)
            let pid = String(decoding: holder.prefix(max(count, 0)), as: UTF8.self).trimmed
            throw LedgerError.busy(path: path, holder: pid.isEmpty ? "another process" : "process \(pid)")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        return SendingLock(fd: fd)
    }

    /// The names of the batches, in order.
    public func batchNames() throws -> [String] {
        try database.read { try String.fetchAll($0, sql: "SELECT name FROM batches ORDER BY name") }
    }
}

/// Holds the ledger's sending lock until released or deallocated.
public final class SendingLock: @unchecked Sendable {
    private var fd: Int32

    init(fd: Int32) { self.fd = fd }

    public func release() {
        if fd >= 0 { close(fd); fd = -1 }
    }

    deinit { release() }
}
