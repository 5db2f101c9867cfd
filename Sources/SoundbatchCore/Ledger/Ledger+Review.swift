import Foundation

// `ReviewLedger`, written once over `LedgerBackend`.
extension LedgerBackend {
    public func reviewRows(batchID: Int64, _ query: ReviewQuery) async throws -> (rows: [ReviewRow], matching: Int) {
        let filter = reviewFilter(batchID: batchID, query)
        // A sheet row is shown whole, every job of it, when one of its jobs matches.
        let keys: [String]
        let matching: Int
        if let search = query.search?.trimmed, !search.isEmpty {
            let found = try await rowsMatching(search, filter)
            matching = found.count
            keys = Array(found.dropFirst(query.offset).prefix(query.limit))
        } else {
            matching = try await scan("SELECT COUNT(DISTINCT j.row_key) AS matching FROM jobs j WHERE \(filter)")[0][
                "matching"]
            keys = try await scan(
                """
                SELECT j.row_key FROM jobs j WHERE \(filter) GROUP BY j.row_key
                ORDER BY MIN(\(Self.rowFirstJob)) LIMIT \(query.limit) OFFSET \(query.offset)
                """
            ).map { try $0["row_key"] }
        }
        guard !keys.isEmpty else { return ([], matching) }
        let jobs = try await scan(
            """
            SELECT j.id, j.row_key, j.keyed_by_content, j.source_line, j.prompt, j.metadata, j.state, j.variation,
                   \(LedgerSQL.reason()) AS reason, \(Self.reviewTakeColumns("j"))
            FROM jobs j LEFT JOIN checks c ON c.job_id = j.id AND c.take = j.take
            WHERE j.batch_id = \(batchID) AND j.row_key IN (\(list: keys)) ORDER BY \(Self.sheetOrder)
            """)
        let ids: [Int64] = try jobs.map { try $0["id"] }
        let earlier = try await scan(
            """
            SELECT \(Self.reviewTakeColumns("t")) FROM takes t JOIN jobs j ON j.id = t.job_id
                LEFT JOIN checks c ON c.job_id = t.job_id AND c.take = t.take
            WHERE t.job_id IN (\(list: ids)) ORDER BY t.job_id, t.take
            """)
        let takes = Dictionary(grouping: try earlier.map { try ReviewTake(row: $0) }) { $0.jobID }
        let byKey = try Dictionary(grouping: jobs) { try $0["row_key"] as String }
        let rows = try keys.compactMap { key in
            try byKey[key].map { jobs in
                try ReviewRow(jobs: try jobs.map { ($0, takes[try $0["id"]] ?? []) })
            }
        }
        return (rows, matching)
    }

    /// The first job of job `j`'s sheet row: its first variation.
    private static var rowFirstJob: SQL {
        """
        CASE WHEN j.variation = 1 THEN j.id ELSE COALESCE((
            SELECT o.id FROM jobs o WHERE o.batch_id = j.batch_id AND o.row_key = j.row_key AND o.variation = 1), j.id) END
        """
    }

    /// The rows of the batch in the sheet's order: a row's variations (`run --takes`, added
    /// after the feed) beside its first.
    private static var sheetOrder: SQL { "\(rowFirstJob), j.variation" }

    /// A take's columns for `ReviewTake`: of the job's current take (`j`), or an earlier one
    /// (`t`); the prompt is the one that made it.
    private static func reviewTakeColumns(_ take: String) -> SQL {
        let prompt = take == "t" ? "COALESCE(t.prompt, j.prompt)" : "COALESCE(j.take_prompt, j.prompt)"
        return """
            \(raw: take == "t" ? "t.job_id" : "j.id AS job_id"), \(raw: take).take, \(raw: take).state AS take_state, \(raw: prompt) AS take_prompt, \(raw: take).verdict,
            \(raw: take).conversion_cost, \(raw: take).credit_estimate, \(raw: take).audio_seconds, \(raw: take).peaks,
            \(raw: take).download_path, \(LedgerSQL.reason(of: take)) AS take_reason, c.findings, c.loudness_lufs,
            c.true_peak_dbtp, c.sample_peak_dbfs, c.dc_offset_dbfs, c.longest_gap, c.duplicate_of, c.problem,
            c.seconds AS checked_seconds, j.audio_length AS asked_seconds
            """
    }

    /// The test of a job `j` of the batch against a review's state, verdict and jobs.
    private func reviewFilter(batchID: Int64, _ query: ReviewQuery) -> SQL {
        var tests: [SQL] = ["j.batch_id = \(batchID)"]
        if let state = query.state { tests.append("j.state = \(state)") }
        if let ids = query.jobIDs { tests.append("j.id IN (\(list: ids))") }
        switch query.verdict {
        case .kept?:
            tests.append(
                """
                (j.verdict = \(Verdict.kept)
                 OR EXISTS (SELECT 1 FROM takes t WHERE t.job_id = j.id AND t.verdict = \(Verdict.kept)))
                """)
        case .rejected?: tests.append("j.verdict = \(Verdict.rejected)")
        case .unreviewed?: tests.append("(j.state = \(JobState.completed) AND j.verdict IS NULL)")
        case nil: break
        }
        if let flagged = query.flagged {
            let found: SQL =
                "EXISTS (SELECT 1 FROM checks f WHERE f.job_id = j.id AND f.take = j.take AND f.findings <> '')"
            tests.append(flagged ? found : "NOT \(found)")
        }
        return SQL.joined(tests, separator: " AND ")
    }

    /// The keys of the rows, each once, with a job `filter` finds whose id, prompt (the row's,
    /// its take's or an earlier take's) or own columns hold `search`, in the sheet's order. Case is folded here, with Swift's
    /// Unicode lower case, so that both databases find the same rows whatever their collation.
    private func rowsMatching(_ search: String, _ filter: SQL) async throws -> [String] {
        let needle = search.lowercased()
        func holds(_ text: String?) -> Bool { text.map { $0.lowercased().contains(needle) } ?? false }
        let earlierPrompts: Set<Int64> = Set(
            try await scan(
                "SELECT t.job_id, t.prompt FROM takes t JOIN jobs j ON j.id = t.job_id WHERE \(filter)"
            ).compactMap { row in holds(try row["prompt"]) ? try row["job_id"] as Int64 : nil })
        var found: [String] = []
        var seen: Set<String> = []
        try await forEachRow(
            """
            SELECT j.id, j.row_key, j.prompt, j.take_prompt, j.metadata FROM jobs j WHERE \(filter)
            ORDER BY \(Self.sheetOrder)
            """
        ) { row in
            let id: Int64 = try row["id"]
            if try earlierPrompts.contains(id) || holds(row["row_key"]) || holds(row["prompt"])
                || holds(row["take_prompt"]) || holds(row["metadata"])
            {
                let key: String = try row["row_key"]
                if seen.insert(key).inserted { found.append(key) }
            }
        }
        return found
    }

    /// Take `take` of a job, current or earlier: in `jobs` or in `takes`, and what it holds.
    private func findTake(
        jobID: Int64, take: Int, in db: any SQLRunner
    ) async throws -> (table: String, row: LedgerRow)? {
        for table in ["jobs", "takes"] {
            let job = table == "jobs" ? "id" : "job_id"
            if let row = try await db.row(
                """
                SELECT state, \(LedgerSQL.pathHere(table, jobID: "\(table).\(job)")) AS path, download_path,
                       download_sha256, download_size, \(kept(table)) AS kept, take, \(raw: job) AS job_id, peaks,
                       audio_seconds
                FROM \(raw: table)
                WHERE \(raw: job) = \(jobID) AND take = \(take)
                """)
            {
                return (table, row)
            }
        }
        return nil
    }

    /// Sets `assignments` on take `take` of a job, where `findTake` found it.
    private func updateTake(
        _ table: String, set assignments: SQL, jobID: Int64, take: Int, in db: any SQLRunner
    )
        async throws
    {
        try await db.run(
            "UPDATE \(raw: table) SET \(assignments) WHERE \(raw: table == "jobs" ? "id" : "job_id") = \(jobID) AND take = \(take)"
        )
    }

    public func setVerdict(_ verdict: Verdict?, jobID: Int64, take: Int) async throws -> VerdictChange {
        try await transaction { db in
            guard let found = try await self.findTake(jobID: jobID, take: take, in: db) else { return .noSuchTake }
            let change = Verdict.change(verdict, on: try found.row["state"])
            guard change == .recorded else { return change }
            try await self.updateTake(found.table, set: "verdict = \(verdict)", jobID: jobID, take: take, in: db)
            return .recorded
        }
    }

    public func sound(jobID: Int64, take: Int) async throws -> (sound: SavedSound, summary: SoundSummary?)? {
        guard let found = try await findTake(jobID: jobID, take: take, in: self),
            try found.row["download_path"] as String? != nil
        else { return nil }
        let peaks: String? = try found.row["peaks"]
        let seconds: Double? = try found.row["audio_seconds"]
        let summary = peaks.flatMap { peaks in
            seconds.map { SoundSummary(seconds: $0, peaks: SoundSummary.peaks(fromText: peaks)) }
        }
        return (try SavedSound(row: found.row), summary)
    }

    public func recordSound(_ summary: SoundSummary, jobID: Int64, take: Int) async throws {
        try await transaction { db in
            guard let found = try await self.findTake(jobID: jobID, take: take, in: db) else { return }
            try await self.updateTake(
                found.table, set: "peaks = \(summary.peaksText), audio_seconds = \(summary.seconds)", jobID: jobID,
                take: take, in: db)
        }
    }

    public func jobIDs(batchID: Int64, row: String) async throws -> [Int64] {
        try await rows(
            """
            SELECT id FROM jobs WHERE batch_id = \(batchID) AND (row_key = \(row) OR CAST(source_line AS TEXT) = \(row))
            ORDER BY id
            """
        ).map { try $0["id"] }
    }
}
