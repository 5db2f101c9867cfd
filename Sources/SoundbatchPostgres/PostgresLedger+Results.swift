import Foundation
import PostgresNIO
import SoundbatchCore

extension PostgresLedger {
    public func withFollowing<T: Sendable>(batch: String, _ body: (Int64) async throws -> T) async throws -> T {
        // A runner that only follows tasks holds a lease as a sender does, for its claims.
        if me != nil { return try await body(try await batchID(named: batch)) }
        return try await withSending(batch: batch, body)
    }

    /// The batch's submitted jobs that no live runner follows, claimed for this one (all of
    /// them when this process is no runner): a task is looked at by one runner at a time.
    public func submittedJobs(batchID: Int64) async throws -> [TrackedJob] {
        try await claim(
            batchID: batchID, state: .submitted, condition: "j.task_id IS NOT NULL",
            columns: "j.id, j.task_id, j.submitted_at, j.eta, j.audio_length"
        ).map { row in
            let row = row.makeRandomAccess()
            return TrackedJob(
                id: try row.get("id"), row: try Self.rowName(row), taskID: try row.get("task_id"),
                submittedAt: Timestamp.date(try row.get("submitted_at", as: String?.self)) ?? Date(),
                eta: try row.get("eta"), audioLength: try row.get("audio_length"))
        }
    }

    /// The batch's completed jobs with audio that no live runner holds, claimed for this one.
    public func audioJobs(batchID: Int64) async throws -> [AudioJob] {
        try await claim(
            batchID: batchID, state: .completed, condition: "j.audio_url IS NOT NULL", columns: Self.audioJobColumns
        ).map(Self.audioJob)
    }

    /// Claims the batch's jobs in `state` that match `condition` and were left behind
    /// (`isLeftBehind`: not this runner's already), skipping those another runner is claiming
    /// this moment; returns them in id order.
    private func claim(
        batchID: Int64, state: JobState, condition: String, columns: String
    ) async throws
        -> [PostgresRow]
    {
        let me = self.me
        guard let me else {
            return try await rows(
                """
                SELECT \(unescaped: columns), \(unescaped: LedgerSQL.rowNameColumns("j")) FROM jobs j
                WHERE j.batch_id = \(batchID) AND j.state = \(state.rawValue) AND \(unescaped: condition)
                ORDER BY j.id
                """)
        }
        return try await rows(
            """
            WITH claimed AS (
                SELECT j.id FROM jobs j
                WHERE j.batch_id = \(batchID) AND j.state = \(state.rawValue) AND \(unescaped: condition)
                    AND \(unescaped: isLeftBehind(me))
                FOR UPDATE SKIP LOCKED),
            taken AS (UPDATE jobs SET runner_id = \(me) FROM claimed WHERE jobs.id = claimed.id RETURNING jobs.id)
            SELECT \(unescaped: columns), \(unescaped: LedgerSQL.rowNameColumns("j"))
            FROM jobs j JOIN taken ON taken.id = j.id ORDER BY j.id
            """)
    }

    private static let audioJobColumns = "j.id, j.take, j.audio_url, j.download_path, j.download_size, j.download_sha256"

    private static func audioJob(_ row: PostgresRow) throws -> AudioJob {
        let row = row.makeRandomAccess()
        return AudioJob(
            id: try row.get("id"), row: try rowName(row), rowKey: try row.get("row_key"),
            prompt: try row.get("prompt"), keyedByContent: try row.get("keyed_by_content", as: Int.self) != 0,
            variation: try row.get("variation"), take: try row.get("take"), audioURL: try row.get("audio_url"), downloadedPath: try row.get("download_path"),
            downloadedSize: try row.get("download_size"), downloadedSHA256: try row.get("download_sha256"))
    }

    public func audioJob(id: Int64) async throws -> AudioJob? {
        try await rows(
            """
            SELECT \(unescaped: Self.audioJobColumns), \(unescaped: LedgerSQL.rowNameColumns("j")) FROM jobs j
            WHERE j.id = \(id) AND j.state = \(JobState.completed.rawValue) AND j.audio_url IS NOT NULL
            """
        ).first.map(Self.audioJob)
    }

    public func state(jobID: Int64) async throws -> JobState? {
        try await rows("SELECT state FROM jobs WHERE id = \(jobID)").first
            .flatMap { JobState(rawValue: try $0.decode(String.self)) }
    }

    public func job(taskID: String) async throws -> (id: Int64, batchID: Int64)? {
        try await rows("SELECT id, batch_id FROM jobs WHERE task_id = \(taskID)").first?.decode((Int64, Int64).self)
    }

    /// One text parameter, $1.
    private static func text(_ value: String) -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(value)
        return binds
    }

    public func identity() async throws -> String {
        try await rows("SELECT id FROM ledger_identity").first?.decode(String.self) ?? ""
    }

    public func job(callbackToken: String) async throws -> (id: Int64, batchID: Int64)? {
        try await rows(PostgresQuery(unsafeSQL: LedgerSQL.callbackJob(token: "$1"), binds: Self.text(callbackToken)))
            .first?.decode((Int64, Int64).self)
    }

    public func settle(
        jobID: Int64, callbackToken: String, taskID: String, status: RemoteStatus, now: Date = Date()
    ) async throws -> CallbackSettlement {
        let stamp = Timestamp.string(now)
        return try await transaction { connection in
            let logger = self.logger
            let state = try await connection.query(
                "SELECT state FROM jobs WHERE id = \(jobID) FOR UPDATE", logger: logger
            ).collect().first?.decode(String.self)
            let known = try await connection.query(
                PostgresQuery(unsafeSQL: LedgerSQL.taskKnown("$1"), binds: Self.text(taskID)), logger: logger
            ).collect().first?.decode(Int.self)
            guard known == 0 else { return .alreadyKnown }
            var binds = PostgresBindings()
            binds.append(jobID)
            binds.append(taskID)
            binds.append(callbackToken)
            binds.append(stamp)
            let settled = try await connection.query(
                PostgresQuery(
                    unsafeSQL: LedgerSQL.settleByCallback(job: "$1", task: "$2", token: "$3", now: "$4") + " RETURNING id",
                    binds: binds), logger: logger
            ).collect()
            if settled.count == 1 { return .settled }
            if state == JobState.submitting.rawValue {
                var noted = PostgresBindings()
                noted.append(callbackToken)
                noted.append(taskID)
                try await connection.query(
                    PostgresQuery(unsafeSQL: LedgerSQL.noteCallback(token: "$1", task: "$2"), binds: noted), logger: logger)
                return .noted
            }
            let found = TaskStanding.found(status)
            binds.append(found.state.rawValue)
            binds.append(found.remoteStatus)
            binds.append(found.statusMessage)
            binds.append(found.audioURL)
            binds.append(found.conversionCost)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: LedgerSQL.keepFoundTake(
                        job: "$1", task: "$2", token: "$3", now: "$4", state: "$5::text", remoteStatus: "$6",
                        statusMessage: "$7", audioURL: "$8", cost: "$9"),
                    binds: binds), logger: logger)
            var job = PostgresBindings()
            job.append(jobID)
            try await connection.query(
                PostgresQuery(unsafeSQL: LedgerSQL.doubtResolved(job: "$1"), binds: job), logger: logger)
            return .keptAsEarlierTake
        }
    }

    public func noteCallback(token: String, taskID: String) async throws {
        var binds = PostgresBindings()
        binds.append(token)
        binds.append(taskID)
        try await rows(PostgresQuery(unsafeSQL: LedgerSQL.noteCallback(token: "$1", task: "$2"), binds: binds))
    }

    public func unconfirmedCallbacks(batchID: Int64) async throws -> [UnconfirmedCallback] {
        try await rows(PostgresQuery(unsafeSQL: LedgerSQL.unconfirmedCallbacks(batch: String(batchID)))).map {
            let (job, token, task) = try $0.decode((Int64, String, String).self)
            return UnconfirmedCallback(jobID: job, token: token, taskID: task)
        }
    }

    public func adopt(jobID: Int64, taskID: String, now: Date = Date()) async throws -> Adoption {
        try await transaction { connection in
            let logger = self.logger
            _ = try await connection.query("SELECT id FROM jobs WHERE id = \(jobID) FOR UPDATE", logger: logger).collect()
            let known = try await connection.query(
                PostgresQuery(unsafeSQL: LedgerSQL.taskKnown("$1"), binds: Self.text(taskID)), logger: logger
            ).collect().first?.decode(Int.self)
            guard known == 0 else { return .taskKnown }
            var binds = PostgresBindings()
            binds.append(jobID)
            binds.append(taskID)
            binds.append(Timestamp.string(now))
            let adopted = try await connection.query(
                PostgresQuery(unsafeSQL: LedgerSQL.adoptTask(job: "$1", task: "$2", now: "$3") + " RETURNING id", binds: binds),
                logger: logger
            ).collect()
            return adopted.count == 1 ? .adopted : .notInDoubt
        }
    }

    public func forgetCallback(token: String) async throws {
        try await rows(PostgresQuery(unsafeSQL: LedgerSQL.forgetCallback(token: "$1"), binds: Self.text(token)))
    }

    @discardableResult
    public func recordStatus(
        jobID: Int64, _ remote: RemoteStatus, now: Date = Date()
    ) async throws -> (JobState, changed: Bool) {
        try await transaction { connection in try await self.record(status: remote, ofJob: jobID, now: now, on: connection) }
    }

    /// What `recordStatus` does, in a transaction under way on `connection`.
    private func record(status remote: RemoteStatus, ofJob jobID: Int64, now: Date, on connection: PostgresConnection)
        async throws -> (JobState, changed: Bool)
    {
        let stamp = Timestamp.string(now)
        guard
            let row = try await connection.query(
                """
                SELECT state, remote_status, status_msg, audio_url, conversion_cost FROM jobs
                WHERE id = \(jobID) FOR UPDATE
                """, logger: self.logger
            ).collect().first,
            case let (state, remoteStatus, statusMessage, audioURL, cost) = try row.decode(
                (String, String?, String?, String?, Double?).self)
        else { throw LedgerError.noSuchJob(jobID: jobID) }
        let current = try JobState(ledger: state)
        let standing = TaskStanding(
            state: current, remoteStatus: remoteStatus, statusMessage: statusMessage, audioURL: audioURL,
            conversionCost: cost)
        guard let next = standing.updated(by: remote) else { return (current, false) }
        try await connection.query(
            """
            UPDATE jobs SET state = \(next.state.rawValue), remote_status = \(next.remoteStatus),
                status_msg = \(next.statusMessage), audio_url = \(next.audioURL),
                conversion_cost = \(next.conversionCost),
                completed_at = CASE WHEN \(next.state != .submitted) AND completed_at IS NULL THEN \(stamp)
                                    ELSE completed_at END,
                updated_at = \(stamp)
            WHERE id = \(jobID)
            """, logger: self.logger)
        return (next.state, true)
    }

    public func recordMissing(jobID: Int64, reason: String, now: Date = Date()) async throws -> Bool {
        try await rows(
            """
            UPDATE jobs SET state = \(JobState.remoteMissing.rawValue), last_error = \(reason),
                updated_at = \(Timestamp.string(now))
            WHERE id = \(jobID) AND state = \(JobState.submitted.rawValue) RETURNING id
            """
        ).count == 1
    }

    public func recordLook(
        jobID: Int64, _ outcome: StatusOutcome, startedAt: Date, latency: Duration, now: Date = Date()
    ) async throws -> JobState? {
        let finished = Timestamp.string(startedAt.addingTimeInterval(latency.seconds))
        return try await transaction { connection in
            try await connection.query(
                """
                INSERT INTO attempts (job_id, kind, outcome, started_at, finished_at, http_status, error, latency_ms)
                VALUES (\(jobID), \(AttemptKind.poll.rawValue), \(outcome.attemptOutcome.rawValue),
                        \(Timestamp.string(startedAt)), \(finished), \(outcome.httpStatus), \(outcome.error),
                        \(Int(latency.seconds * 1000)))
                """, logger: self.logger)
            guard case let .found(remote) = outcome else { return nil }
            return try await self.record(status: remote, ofJob: jobID, now: now, on: connection).0
        }
    }

    public func recordDownload(
        jobID: Int64, path: String, size: Int, sha256: String, sound: SoundSummary?, now: Date = Date()
    ) async throws {
        try await rows(
            """
            UPDATE jobs SET download_path = \(path), download_key = \(FileNames.caseKey(path)), download_size = \(size),
                download_sha256 = \(sha256), peaks = \(sound?.peaksText), audio_seconds = \(sound?.seconds),
                updated_at = \(Timestamp.string(now))
            WHERE id = \(jobID)
            """)
    }

    public func isPathTaken(_ path: String, byOtherThan jobID: Int64) async throws -> Bool {
        try await !rows(
            "SELECT 1 FROM jobs WHERE download_key = \(FileNames.caseKey(path)) AND id <> \(jobID) LIMIT 1"
        ).isEmpty
    }
}
