/// The SQL both backends share: standard SQL over the ledger's columns, which are the same
/// on SQLite and PostgreSQL, so that each rule here is written once and reads the same on both.
public enum LedgerSQL {
    /// The states of jobs that failed for good, as an SQL list; written from `JobState`, so
    /// that no state is spelled by hand in a query.
    public static let failedForGood = JobState.failedForGood.map { "'\($0.rawValue)'" }.joined(separator: ", ")

    /// Why a job `j` (or an earlier take `t` of one) failed, in words: the service's own for
    /// a failed generation, else the last error.
    public static func reason(of row: String = "j") -> String {
        """
        CASE WHEN \(row).state = '\(JobState.generationFailed.rawValue)'
             THEN COALESCE(\(row).status_msg, \(row).last_error, 'the service could not generate it')
             WHEN \(row).state IN (\(failedForGood), '\(JobState.invalid.rawValue)') THEN \(row).last_error
        END
        """
    }

    /// Jobs failed for good, counted by batch, state and reason; `batchFilter` is the
    /// backend's test of `b.name` against the batch asked for (or none).
    public static func failureReasons(batchFilter: String) -> String {
        """
        SELECT b.name, j.state, \(reason()) AS reason, COUNT(*) AS jobs
        FROM jobs j JOIN batches b ON b.id = j.batch_id
        WHERE \(batchFilter) AND j.state IN (\(failedForGood))
        GROUP BY 1, 2, 3
        """
    }

    /// A line of `report --jobs`: the batch's and the job's ids and whether the row is keyed
    /// by its content (for `ReportJob`), then `ReportJob.columns`. For a job's current take
    /// (`j`), or an earlier one (`t`, from `earlierTakes`); the row's own fields are the job's,
    /// the prompt the one that made the take.
    public static func reportLine(earlierTake: Bool) -> String {
        let take = earlierTake ? "t" : "j"
        let prompt = earlierTake ? "COALESCE(t.prompt, j.prompt)" : "COALESCE(j.take_prompt, j.prompt)"
        return """
            j.batch_id, j.id, j.keyed_by_content, b.name, j.row_key, \(take).take, j.source_line, \(prompt),
            j.audio_length, \(take).state, \(take).task_id, \(take).conversion_id, \(take).eta,
            \(take).credit_estimate, \(take).conversion_cost, \(take).request_in_doubt, \(take).verdict,
            \(take).remote_status, \(take).audio_url, \(take).download_path, \(take).submitted_at, \(take).completed_at,
            \(earlierTake ? "NULL" : "j.attempt_count"), \(take).last_error, \(reason(of: take))
            """
    }

    /// Earlier takes as `t`, with their job `j` and batch `b`.
    public static let earlierTakes = "takes t JOIN jobs j ON j.id = t.job_id JOIN batches b ON b.id = j.batch_id"

    /// The first `limit` jobs `filter` covers that failed for good: what names each and
    /// why it failed (`FailedJob`).
    public static func failedJobs(filter: String, limit: Int) -> String {
        """
        SELECT j.row_key, j.keyed_by_content, j.source_line, j.prompt, j.state, \(reason()) AS reason FROM jobs j
        WHERE \(filter) AND j.state IN (\(failedForGood)) ORDER BY j.batch_id, j.id LIMIT \(limit)
        """
    }

    /// Every estimate and charge as `(t, e, c)`: a time to the second, what was estimated
    /// then (at submission) or charged then (at completion), over the jobs `filter` covers
    /// and the earlier takes `takesFilter` covers, so that the chart ends where the totals do.
    public static func creditEvents(filter: String, takesFilter: String) -> String {
        let none = "CAST(NULL AS DOUBLE PRECISION)"
        return """
            SELECT substr(j.submitted_at, 1, 19) AS t, j.credit_estimate AS e, \(none) AS c
            FROM jobs j WHERE \(filter) AND j.submitted_at IS NOT NULL
            UNION ALL
            SELECT substr(COALESCE(j.completed_at, j.submitted_at), 1, 19), \(none), j.conversion_cost
            FROM jobs j WHERE \(filter) AND j.conversion_cost IS NOT NULL
            UNION ALL
            SELECT substr(t.submitted_at, 1, 19), t.credit_estimate, \(none)
            FROM takes t JOIN jobs j ON j.id = t.job_id WHERE \(takesFilter) AND t.submitted_at IS NOT NULL
            UNION ALL
            SELECT substr(COALESCE(t.completed_at, t.submitted_at), 1, 19), \(none), t.conversion_cost
            FROM takes t JOIN jobs j ON j.id = t.job_id WHERE \(takesFilter) AND t.conversion_cost IS NOT NULL
            """
    }

    /// The average of the estimates of the batch `batch` (a parameter) so far, its jobs' and
    /// earlier takes' (as `SpendTotals.averageEstimate`): only a job the service took has one,
    /// and a task, so the index of tasks (`indexOfTasks`, to name it where needed) finds them.
    public static func averageEstimate(_ batch: String, indexOfTasks: String = "") -> String {
        """
        SELECT CAST(SUM(e) AS DOUBLE PRECISION) / NULLIF(COUNT(e), 0) FROM (
            SELECT credit_estimate AS e FROM jobs \(indexOfTasks) WHERE task_id IS NOT NULL AND batch_id = \(batch)
            UNION ALL
            SELECT t.credit_estimate FROM takes t JOIN jobs j ON j.id = t.job_id WHERE j.batch_id = \(batch)
        ) estimates
        """
    }

    /// Rows of the batch `batch` (a parameter)'s latest feed whose prompt a pending job from
    /// an earlier feed has: the batch grouped by prompt, once.
    public static func repeatedPrompts(_ batch: String) -> String {
        """
        SELECT CAST(COALESCE(SUM(added), 0) AS BIGINT) FROM (
            SELECT SUM(CASE WHEN j.ingest_id = feed.latest THEN 1 ELSE 0 END) AS added,
                   SUM(CASE WHEN j.ingest_id < feed.latest AND j.state = '\(JobState.pending.rawValue)' THEN 1 ELSE 0 END)
                       AS waiting
            FROM jobs j, (SELECT MAX(id) AS latest FROM ingests WHERE batch_id = \(batch)) feed
            WHERE j.batch_id = \(batch) GROUP BY j.prompt
        ) prompts WHERE waiting > 0
        """
    }

    /// The jobs `drop` may consider: the batch `batch` (a parameter)'s in `states`, of its
    /// latest feed only with `lastFeed`, with whether each was never sent, and its row's name.
    public static func dropCandidates(_ batch: String, states: Set<JobState>, lastFeed: Bool) -> String {
        let wanted = states.map { "'\($0.rawValue)'" }.sorted().joined(separator: ", ")
        return """
            SELECT j.id, j.state, CASE WHEN \(neverSent) THEN 1 ELSE 0 END AS never_sent, \(rowNameColumns("j"))
            FROM jobs j WHERE j.batch_id = \(batch) AND j.state IN (\(wanted.isEmpty ? "NULL" : wanted))
            \(lastFeed ? "AND j.ingest_id = (SELECT MAX(id) FROM ingests WHERE batch_id = \(batch))" : "")
            ORDER BY j.id
            """
    }

    /// A job `j` never sent: pending or invalid, no task, no request in doubt, no earlier
    /// take, and no submission the service took or left unanswered. Only such a job may be dropped.
    public static let neverSent = """
        (j.state IN ('\(JobState.pending.rawValue)', '\(JobState.invalid.rawValue)') AND j.task_id IS NULL
         AND j.request_in_doubt = 0 AND NOT EXISTS (SELECT 1 FROM takes t WHERE t.job_id = j.id)
         AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = j.id AND a.kind = 'submit'
                         AND a.outcome IN ('accepted', 'no_answer', 'interrupted', 'found')))
        """

    /// What a feed writes of a new job: the row's own values (`rowValueCount` of them, in
    /// this order), then the batch, the time twice (made, updated), and the feed that made it.
    public static let feedColumns = """
        row_key, keyed_by_content, source_line, prompt, audio_length, webhook_url, metadata, state, last_error,
        batch_id, created_at, updated_at, ingest_id
        """

    /// Fills `ingest_rows` from the column it replaces (`jobs.seen_ingest_id`), when a
    /// ledger is upgraded: runs of consecutive first jobs last seen by one feed.
    public static let ingestRowsFromSeenColumn = """
        INSERT INTO ingest_rows (ingest_id, first_job_id, last_job_id)
        SELECT seen_ingest_id, MIN(id), MAX(id) FROM (
            SELECT id, seen_ingest_id, id - ROW_NUMBER() OVER (PARTITION BY seen_ingest_id ORDER BY id) AS run
            FROM jobs WHERE variation = 1) runs
        GROUP BY seen_ingest_id, run ORDER BY 2
        """

    /// Whether feed `ingest`'s file held the row of job `job` (a table's name in the query):
    /// the run that starts last at or before it, ended at or after it.
    public static func heldByFeed(_ ingest: String, job: String) -> String {
        """
        EXISTS (SELECT 1 FROM (SELECT r.last_job_id FROM ingest_rows r
                               WHERE r.ingest_id = \(ingest) AND r.first_job_id <= \(job).id
                               ORDER BY r.first_job_id DESC LIMIT 1) latest
                WHERE latest.last_job_id >= \(job).id)
        """
    }
    public static let rowValueCount = 9

    /// Adds the variations that rows of feed `ingest` ask for and do not have: as many as
    /// the row's `takes` column says (`rowTakes`, an expression over the row `f`), else
    /// `takes`; each a pending copy of the row's first job, numbered after the row's
    /// latest take. Every parameter is a literal or a placeholder.
    public static func addVariations(batch: String, ingest: String, now: String, takes: String, rowTakes: String) -> String {
        """
        WITH RECURSIVE n(v) AS (SELECT 2 UNION ALL SELECT v + 1 FROM n WHERE v < \(RowTakes.allowed.upperBound))
        INSERT INTO jobs (
            row_key, keyed_by_content, source_line, prompt, audio_length, webhook_url, metadata, state,
            batch_id, created_at, updated_at, ingest_id, variation, take)
        SELECT f.row_key, f.keyed_by_content, f.source_line, f.prompt, f.audio_length, f.webhook_url, f.metadata,
            '\(JobState.pending.rawValue)', f.batch_id, \(now), \(now), \(ingest), n.v,
            \(rowLatestTake("f")) + ROW_NUMBER() OVER (PARTITION BY f.row_key ORDER BY n.v)
        FROM jobs f JOIN n ON n.v <= COALESCE(\(rowTakes), \(takes))
        WHERE f.batch_id = \(batch) AND f.variation = 1 AND \(heldByFeed(ingest, job: "f"))
            AND f.state <> '\(JobState.invalid.rawValue)'
            AND NOT EXISTS (
                SELECT 1 FROM jobs o
                WHERE o.batch_id = f.batch_id AND o.row_key = f.row_key AND o.variation > 1 AND o.variation = n.v)
        """
    }

    /// The latest take of the row of `table`'s job, across its variations and their earlier
    /// takes: each of the two indexes asked apart (`jobs_by_key` holds first variations,
    /// `jobs_by_variation` the others).
    public static func rowLatestTake(_ table: String) -> String {
        let rowJobs = ["o.variation = 1", "o.variation > 1"].map {
            "o.batch_id = \(table).batch_id AND o.row_key = \(table).row_key AND \($0)"
        }
        let parts =
            rowJobs.map { "SELECT o.take FROM jobs o WHERE \($0)" }
            + rowJobs.map { "SELECT t.take FROM takes t JOIN jobs o ON o.id = t.job_id WHERE \($0)" }
        return "(SELECT COALESCE(MAX(row_takes.take), 0) FROM (\(parts.joined(separator: " UNION ALL "))) AS row_takes)"
    }

    /// Sets the row's own columns (`metadata`) on every job of the row, each variation's
    /// through its own index. The three are parameters.
    public static func updateRowColumns(batch: String, rowKey: String, to metadata: String) -> String {
        """
        UPDATE jobs SET metadata = \(metadata)
        WHERE batch_id = \(batch) AND row_key = \(rowKey) AND (variation = 1 OR variation > 1)
        """
    }

    /// What a take of a job is given, kept in `takes` when a new take starts.
    static let takeColumns = [
        "take", "state", "task_id", "conversion_id", "eta", "credit_estimate", "conversion_cost", "remote_status",
        "status_msg", "audio_url", "download_path", "download_size", "download_sha256", "last_error",
        "last_http_status", "request_in_doubt", "submitted_at", "completed_at", "verdict", "peaks", "audio_seconds"
    ]

    /// Keeps the job `job`'s take in `takes`, with the prompt that made it, if the job is
    /// finished: its file under `renamedFile` when that is not null (it was moved aside).
    /// The three are parameters.
    public static func keepTake(job: String, renamedFile: String, retiredAt: String) -> String {
        let columns = takeColumns.joined(separator: ", ")
        let values = takeColumns.map { $0 == "download_path" ? "COALESCE(\(renamedFile), download_path)" : $0 }
        return """
            INSERT INTO takes (job_id, \(columns), prompt, retired_at)
            SELECT id, \(values.joined(separator: ", ")), COALESCE(take_prompt, prompt), \(retiredAt)
            FROM jobs WHERE id = \(job) AND state IN (\(JobState.finished.map { "'\($0.rawValue)'" }.joined(separator: ", ")))
            """
    }

    /// Makes the job `job` pending again for its next take (numbered after its row's
    /// latest, which may be another variation's), sent with `prompt` when that is
    /// not null, else the row's; what its take was given cleared (after `keepTake`), held by
    /// no runner. `job`, `prompt` and `now` are parameters.
    public static func startTake(job: String, prompt: String, now: String, runners: Bool) -> String {
        let cleared = takeColumns.filter { !["take", "state"].contains($0) }
            .map { $0 == "request_in_doubt" ? "\($0) = 0" : "\($0) = NULL" }
        return """
            UPDATE jobs SET state = '\(JobState.pending.rawValue)', take_prompt = \(prompt),
                take = 1 + \(rowLatestTake("jobs")),
                \(cleared.joined(separator: ", ")), message = NULL, download_key = NULL,
                updated_at = \(now)\(runners ? ", runner_id = NULL" : "")
            WHERE id = \(job)
            """
    }

    /// Column names, quoted, for a SELECT or INSERT of them (`ledger copy`).
    public static func columnList(_ columns: [String]) -> String {
        columns.map { "\"\($0)\"" }.joined(separator: ", ")
    }

    /// The prompt a job's next request sends, as `take_prompt`: the one edited for its take,
    /// else the row's.
    public static func takePrompt(_ table: String = "jobs") -> String {
        "COALESCE(\(table).take_prompt, \(table).prompt) AS take_prompt"
    }

    /// What a job's `RowName` is made of, from `jobs` as `table` names it in the query.
    public static func rowNameColumns(_ table: String = "jobs") -> String {
        """
        \(table).row_key, \(table).keyed_by_content, \(table).source_line, \(table).prompt, \(table).variation,
        (SELECT source_file FROM ingests WHERE ingests.id = \(table).ingest_id) AS source_file
        """
    }
}

/// A set of job ids, a bit each: ids are dense, from 1. 125 KB for a million.
public struct IDSet: Sendable {
    private var words: [UInt64] = []

    public init() {}

    public func contains(_ id: Int64) -> Bool {
        let word = Int(id >> 6)
        return word < words.count && words[word] & (1 << UInt64(id & 63)) != 0
    }

    public mutating func insert(_ ids: ClosedRange<Int64>) {
        let needed = Int(ids.upperBound >> 6) + 1
        if needed > words.count { words += repeatElement(0, count: max(needed - words.count, words.count)) }
        for id in ids { words[Int(id >> 6)] |= 1 << UInt64(id & 63) }
    }

    /// The ids in the set as runs of consecutive ids, in order: a feed's rows as
    /// `ingest_rows` holds them.
    public var runs: [ClosedRange<Int64>] {
        var runs: [ClosedRange<Int64>] = []
        var start: Int64?
        for (index, word) in words.enumerated() {
            let base = Int64(index) << 6
            // Whole words of one kind are passed at once: the usual case for a feed.
            if word == 0, start == nil { continue }
            if word == ~0, start != nil { continue }
            for bit in 0..<Int64(64) {
                let isIn = word & (1 << UInt64(bit)) != 0
                if isIn, start == nil { start = base + bit }
                if !isIn, let first = start {
                    runs.append(first...base + bit - 1)
                    start = nil
                }
            }
        }
        if let first = start { runs.append(first...Int64(words.count) << 6 - 1) }
        return runs
    }
}
