import Foundation
import GRDB
import SoundbatchCore

extension SQLiteLedger {
    public func withFollowing<T: Sendable>(batch: String, _ body: (Int64) async throws -> T) async throws -> T {
        try await body(try await batchID(named: batch))
    }

    /// The batch's jobs still running at the service.
    public func submittedJobs(batchID: Int64) async throws -> [TrackedJob] {
        try await read { db in
            try TrackedJob.fetchAll(
                db,
                sql: """
                    SELECT id, task_id, submitted_at, eta, audio_length, \(LedgerSQL.rowNameColumns()) FROM jobs
                    WHERE batch_id = ? AND state = ? AND task_id IS NOT NULL ORDER BY id
                    """, arguments: [batchID, JobState.submitted])
        }
    }

    private static let audioJobColumns =
        "id, take, audio_url, download_path, download_size, download_sha256, \(LedgerSQL.rowNameColumns())"

    static func rowName(_ row: Row) -> String {
        RowName.of(
            rowKey: row["row_key"], keyedByContent: row["keyed_by_content"], sourceFile: row["source_file"],
            line: row["source_line"], prompt: row["prompt"], variation: row["variation"] ?? 1)
    }

    /// The batch's completed jobs with an audio URL.
    public func audioJobs(batchID: Int64) async throws -> [AudioJob] {
        try await read { db in
            try AudioJob.fetchAll(
                db,
                sql: """
                    SELECT \(Self.audioJobColumns) FROM jobs
                    WHERE batch_id = ? AND state = ? AND audio_url IS NOT NULL ORDER BY id
                    """, arguments: [batchID, JobState.completed])
        }
    }

    public func audioJob(id: Int64) async throws -> AudioJob? {
        try await read { db in
            try AudioJob.fetchOne(
                db,
                sql: """
                    SELECT \(Self.audioJobColumns) FROM jobs
                    WHERE id = ? AND state = ? AND audio_url IS NOT NULL
                    """, arguments: [id, JobState.completed])
        }
    }

    public func state(jobID: Int64) async throws -> JobState? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE id = ?", arguments: [jobID])
                .flatMap(JobState.init(rawValue:))
        }
    }

    public func job(taskID: String) async throws -> (id: Int64, batchID: Int64)? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT id, batch_id FROM jobs WHERE task_id = ?", arguments: [taskID])
                .map { ($0["id"], $0["batch_id"]) }
        }
    }

    public func identity() async throws -> String {
        try await read { try String.fetchOne($0, sql: "SELECT id FROM ledger_identity") ?? "" }
    }

    public func job(callbackToken: String) async throws -> (id: Int64, batchID: Int64)? {
        try await read { db in
            try Row.fetchOne(db, sql: LedgerSQL.callbackJob(token: "?"), arguments: [callbackToken]).map { ($0[0], $0[1]) }
        }
    }

    public func settle(
        jobID: Int64, callbackToken: String, taskID: String, status: RemoteStatus, now: Date = Date()
    ) async throws -> CallbackSettlement {
        let stamp = Timestamp.string(now)
        return try await write { db in
            guard try Bool.fetchOne(db, sql: LedgerSQL.taskKnown("?1"), arguments: [taskID]) == false else {
                return .alreadyKnown
            }
            try db.execute(
                sql: LedgerSQL.settleByCallback(job: "?1", task: "?2", token: "?3", now: "?4"),
                arguments: [jobID, taskID, callbackToken, stamp])
            if db.changesCount == 1 { return .settled }
            let state = try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE id = ?", arguments: [jobID])
            if state == JobState.submitting.rawValue {
                try db.execute(sql: LedgerSQL.noteCallback(token: "?1", task: "?2"), arguments: [callbackToken, taskID])
                return .noted
            }
            let found = TaskStanding.found(status)
            try db.execute(
                sql: LedgerSQL.keepFoundTake(
                    job: "?1", task: "?2", token: "?3", now: "?4", state: "?5", remoteStatus: "?6", statusMessage: "?7",
                    audioURL: "?8", cost: "?9"),
                arguments: [
                    jobID, taskID, callbackToken, stamp, found.state, found.remoteStatus, found.statusMessage,
                    found.audioURL, found.conversionCost
                ])
            try db.execute(sql: LedgerSQL.doubtResolved(job: "?"), arguments: [jobID])
            return .keptAsEarlierTake
        }
    }

    public func noteCallback(token: String, taskID: String) async throws {
        try await write { try $0.execute(sql: LedgerSQL.noteCallback(token: "?1", task: "?2"), arguments: [token, taskID]) }
    }

    public func unconfirmedCallbacks(batchID: Int64) async throws -> [UnconfirmedCallback] {
        try await read { db in
            try Row.fetchAll(db, sql: LedgerSQL.unconfirmedCallbacks(batch: "?"), arguments: [batchID]).map {
                UnconfirmedCallback(jobID: $0[0], token: $0[1], taskID: $0[2])
            }
        }
    }

    public func adopt(jobID: Int64, taskID: String, now: Date = Date()) async throws -> Adoption {
        try await write { db in
            guard try Bool.fetchOne(db, sql: LedgerSQL.taskKnown("?1"), arguments: [taskID]) == false else { return .taskKnown }
            try db.execute(
                sql: LedgerSQL.adoptTask(job: "?1", task: "?2", now: "?3"), arguments: [jobID, taskID, Timestamp.string(now)])
            return db.changesCount == 1 ? .adopted : .notInDoubt
        }
    }

    public func forgetCallback(token: String) async throws {
        try await write { try $0.execute(sql: LedgerSQL.forgetCallback(token: "?"), arguments: [token]) }
    }

    /// Records what the service says of a task: `completed` with its audio and charge,
    /// `generation_failed`, or still running. Applying the same news twice changes
    /// nothing. Returns the job's state afterwards, and whether anything changed.
    @discardableResult
    public func recordStatus(
        jobID: Int64, _ remote: RemoteStatus, now: Date = Date()
    ) async throws -> (JobState, changed: Bool) {
        try await write { db in try Self.record(db, status: remote, ofJob: jobID, now: now) }
    }

    /// What `recordStatus` does, in a transaction under way.
    private static func record(_ db: Database, status remote: RemoteStatus, ofJob jobID: Int64, now: Date) throws
        -> (JobState, changed: Bool)
    {
        let stamp = Timestamp.string(now)
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT state, remote_status, status_msg, audio_url, conversion_cost FROM jobs WHERE id = ?
                    """, arguments: [jobID])
        else { throw LedgerError.noSuchJob(jobID: jobID) }
        let current = try JobState(ledger: row["state"])
        let standing = TaskStanding(
            state: current, remoteStatus: row["remote_status"], statusMessage: row["status_msg"],
            audioURL: row["audio_url"], conversionCost: row["conversion_cost"])
        guard let next = standing.updated(by: remote) else { return (current, false) }
        try db.execute(
            sql: """
                UPDATE jobs SET state = ?, remote_status = ?, status_msg = ?, audio_url = ?, conversion_cost = ?,
                    completed_at = CASE WHEN ? AND completed_at IS NULL THEN ? ELSE completed_at END, updated_at = ?
                WHERE id = ?
                """,
            arguments: [
                next.state, next.remoteStatus, next.statusMessage, next.audioURL, next.conversionCost,
                next.state != .submitted, stamp, stamp, jobID
            ])
        return (next.state, true)
    }

    public func recordMissing(jobID: Int64, reason: String, now: Date = Date()) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE jobs SET state = ?, last_error = ?, updated_at = ? WHERE id = ? AND state = ?",
                arguments: [JobState.remoteMissing, reason, Timestamp.string(now), jobID, JobState.submitted])
            return db.changesCount == 1
        }
    }

    public func recordLook(
        jobID: Int64, _ outcome: StatusOutcome, startedAt: Date, latency: Duration, now: Date = Date()
    ) async throws -> JobState? {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO attempts (job_id, kind, outcome, started_at, finished_at, http_status, error, latency_ms)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    jobID, AttemptKind.poll, outcome.attemptOutcome, Timestamp.string(startedAt),
                    Timestamp.string(startedAt.addingTimeInterval(latency.seconds)), outcome.httpStatus, outcome.error,
                    Int(latency.seconds * 1000)
                ])
            guard case let .found(remote) = outcome else { return nil }
            return try Self.record(db, status: remote, ofJob: jobID, now: now).0
        }
    }

    public func recordDownload(
        jobID: Int64, path: String, size: Int, sha256: String, sound: SoundSummary?, now: Date = Date()
    ) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE jobs SET download_path = ?, download_key = ?, download_size = ?, download_sha256 = ?,
                        peaks = ?, audio_seconds = ?, updated_at = ?
                    WHERE id = ?
                    """,
                arguments: [
                    path, FileNames.caseKey(path), size, sha256, sound?.peaksText, sound?.seconds,
                    Timestamp.string(now), jobID
                ])
        }
    }

    public func isPathTaken(_ path: String, byOtherThan jobID: Int64) async throws -> Bool {
        try await read { db in
            try Bool.fetchOne(
                db, sql: "SELECT 1 FROM jobs WHERE download_key = ? AND id <> ?",
                arguments: [FileNames.caseKey(path), jobID]) ?? false
        }
    }
}

extension TrackedJob: FetchableRecord {
    public init(row: Row) {
        self.init(
            id: row["id"], row: SQLiteLedger.rowName(row), taskID: row["task_id"],
            submittedAt: Timestamp.date(row["submitted_at"]) ?? Date(),
            eta: row["eta"], audioLength: row["audio_length"])
    }
}

extension AudioJob: FetchableRecord {
    public init(row: Row) {
        self.init(
            id: row["id"], row: SQLiteLedger.rowName(row), rowKey: row["row_key"], prompt: row["prompt"],
            keyedByContent: row["keyed_by_content"], variation: row["variation"], take: row["take"],
            audioURL: row["audio_url"], downloadedPath: row["download_path"], downloadedSize: row["download_size"],
            downloadedSHA256: row["download_sha256"])
    }
}
