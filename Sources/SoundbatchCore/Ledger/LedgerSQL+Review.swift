/// The review's SQL, written once for both backends. `lower` is the backend's lower-case
/// function for Unicode text (GRDB's swiftLowercaseString on SQLite, lower on PostgreSQL),
/// and parameters are the backend's own placeholders.
extension LedgerSQL {
    /// A take's columns for `ReviewTake`: of the job's current take (`j`), or an earlier
    /// one (`t`); the prompt is the one that made it.
    public static func reviewTakeColumns(earlierTake: Bool) -> String {
        let take = earlierTake ? "t" : "j"
        let prompt = earlierTake ? "COALESCE(t.prompt, j.prompt)" : "COALESCE(j.take_prompt, j.prompt)"
        return """
            \(take).take, \(take).state, \(prompt), \(take).verdict, \(take).conversion_cost, \(take).credit_estimate,
            \(take).audio_seconds, \(take).peaks, \(take).download_path, \(reason(of: take))
            """
    }

    /// The test of a job `j` against a review query: `pattern` is the search's parameter
    /// (a LIKE pattern, `ReviewQuery.pattern`), `state` the state's; nil when not asked.
    public static func reviewFilter(
        _ query: ReviewQuery, pattern: String?, state: String?, lower: String
    ) -> String {
        var tests: [String] = []
        if let pattern {
            let like = { (column: String) in "\(lower)(COALESCE(\(column), '')) LIKE \(pattern) ESCAPE '\\'" }
            tests.append(
                "(" + ["j.row_key", "j.prompt", "j.take_prompt", "j.metadata"].map(like).joined(separator: " OR ")
                    + " OR EXISTS (SELECT 1 FROM takes t WHERE t.job_id = j.id AND \(like("t.prompt"))))")
        }
        if let state { tests.append("j.state = \(state)") }
        if let ids = query.jobIDs {
            tests.append("j.id IN (\(ids.isEmpty ? "NULL" : ids.map(String.init).joined(separator: ", ")))")
        }
        switch query.verdict {
        case .kept?:
            tests.append(
                "(j.verdict = 'kept' OR EXISTS (SELECT 1 FROM takes t WHERE t.job_id = j.id AND t.verdict = 'kept'))")
        case .rejected?: tests.append("j.verdict = 'rejected'")
        case .unreviewed?: tests.append("(j.state = '\(JobState.completed.rawValue)' AND j.verdict IS NULL)")
        case nil: break
        }
        return tests.isEmpty ? "TRUE" : tests.joined(separator: " AND ")
    }

    /// The rows of batch `batchID` that `filter` finds, a page of them in the sheet's order,
    /// a row's variations (`run --takes`, added after the feed) beside its first: the row's
    /// columns (`ReviewRow`), then its current take's.
    public static func reviewRows(batchID: Int64, filter: String, limit: Int, offset: Int) -> String {
        """
        SELECT j.id, j.row_key, j.keyed_by_content, j.source_line, j.prompt, j.metadata, j.state, \(reason()),
               \(reviewTakeColumns(earlierTake: false))
        FROM jobs j WHERE j.batch_id = \(batchID) AND \(filter)
        ORDER BY CASE WHEN j.variation = 1 THEN j.id ELSE COALESCE((
            SELECT o.id FROM jobs o WHERE o.batch_id = j.batch_id AND o.row_key = j.row_key AND o.variation = 1), j.id) END,
            j.variation LIMIT \(limit) OFFSET \(offset)
        """
    }

    /// How many rows of batch `batchID` `filter` finds.
    public static func reviewCount(batchID: Int64, filter: String) -> String {
        "SELECT COUNT(*) FROM jobs j WHERE j.batch_id = \(batchID) AND \(filter)"
    }

    /// The earlier takes of these jobs, each after its job's id, in take order.
    public static func reviewTakes(jobIDs: [Int64]) -> String {
        """
        SELECT t.job_id, \(reviewTakeColumns(earlierTake: true))
        FROM takes t JOIN jobs j ON j.id = t.job_id
        WHERE t.job_id IN (\(jobIDs.isEmpty ? "NULL" : jobIDs.map(String.init).joined(separator: ", ")))
        ORDER BY t.job_id, t.take
        """
    }

    /// Sounds (completed takes, earlier ones included) by batch and verdict; `batchFilter`
    /// is the backend's test of `b.name` against the batch asked for (or none).
    public static func verdictCounts(batchFilter: String) -> String {
        let completed = "'\(JobState.completed.rawValue)'"
        return """
            SELECT b.name, v.verdict, COUNT(*) FROM (
                SELECT j.batch_id, j.verdict FROM jobs j WHERE j.state = \(completed)
                UNION ALL
                SELECT j.batch_id, t.verdict FROM takes t JOIN jobs j ON j.id = t.job_id WHERE t.state = \(completed)
            ) v JOIN batches b ON b.id = v.batch_id WHERE \(batchFilter) GROUP BY 1, 2
            """
    }

    /// Take `take` of job `job` (the three are parameters), current or earlier, as
    /// `(kind, state, download_path, peaks, audio_seconds)`: kind 0 for the job's own take, 1 for one in `takes`.
    public static func findTake(job: String, take: String) -> String {
        """
        SELECT 0, state, download_path, peaks, audio_seconds FROM jobs WHERE id = \(job) AND take = \(take)
        UNION ALL
        SELECT 1, state, download_path, peaks, audio_seconds FROM takes WHERE job_id = \(job) AND take = \(take)
        """
    }

    /// Sets `column` to `value` on take `take` of job `job`, wherever it is (`kind` as `findTake` said).
    public static func updateTake(kind: Int, set assignments: String, job: String, take: String) -> String {
        kind == 0
            ? "UPDATE jobs SET \(assignments) WHERE id = \(job) AND take = \(take)"
            : "UPDATE takes SET \(assignments) WHERE job_id = \(job) AND take = \(take)"
    }

    /// The jobs of batch `batchID` a person names `row` (a parameter): its id, or its line.
    public static func jobsNamed(batchID: Int64, row: String) -> String {
        """
        SELECT id FROM jobs WHERE batch_id = \(batchID) AND (row_key = \(row) OR CAST(source_line AS TEXT) = \(row))
        ORDER BY id
        """
    }
}

extension Verdict {
    /// What giving `verdict` (nil: clearing it) to a take in `state` comes to: only a sound
    /// (a completed take) can be kept or rejected; any verdict can be cleared.
    public static func change(_ verdict: Verdict?, on state: JobState) -> VerdictChange {
        verdict == nil || state == .completed ? .recorded : .notASound(state)
    }
}
