/// Fragments of SQL several rules (and both feeds) share: standard SQL over the ledger's
/// columns, which are the same on SQLite and PostgreSQL.
public enum LedgerSQL {
    /// A list of states, for `IN (...)`; written from `JobState`, so that no state is
    /// spelled by hand in a query.
    public static func states(_ states: some Sequence<JobState>) -> SQL {
        SQL(stringLiteral: states.map { "'\($0.rawValue)'" }.sorted().joined(separator: ", "))
    }

    /// The states of jobs that failed for good.
    public static let failedForGood = states(JobState.failedForGood)

    /// Why a job `j` (or an earlier take `t` of one) failed, in words: the service's own for
    /// a failed generation, else the last error.
    public static func reason(of row: String = "j") -> SQL {
        """
        CASE WHEN \(raw: row).state = '\(raw: JobState.generationFailed.rawValue)'
             THEN COALESCE(\(raw: row).status_msg, \(raw: row).last_error, 'the service could not generate it')
             WHEN \(raw: row).state IN (\(failedForGood), '\(raw: JobState.invalid.rawValue)') THEN \(raw: row).last_error
        END
        """
    }

    /// What a job's `RowName` is made of (`LedgerRow.rowName`), from `jobs` as `table`.
    public static func rowNameColumns(_ table: String = "j") -> SQL {
        """
        \(raw: table).row_key, \(raw: table).keyed_by_content, \(raw: table).source_line, \(raw: table).prompt, \
        \(raw: table).variation, (SELECT source_file FROM ingests WHERE ingests.id = \(raw: table).ingest_id) AS source_file
        """
    }

    /// The prompt a job's next request sends, as `take_prompt`: the one edited for its take,
    /// else the row's.
    public static func takePrompt(_ table: String = "j") -> SQL {
        "COALESCE(\(raw: table).take_prompt, \(raw: table).prompt) AS take_prompt"
    }

    /// The latest take of the row of `table`'s job, across its variations and their earlier
    /// takes: each of the two indexes asked apart (`jobs_by_key` holds first variations,
    /// `jobs_by_variation` the others).
    public static func rowLatestTake(_ table: String) -> SQL {
        let rowJobs = ["o.variation = 1", "o.variation > 1"].map {
            "o.batch_id = \(table).batch_id AND o.row_key = \(table).row_key AND \($0)"
        }
        let parts =
            rowJobs.map { "SELECT o.take FROM jobs o WHERE \($0)" }
            + rowJobs.map { "SELECT t.take FROM takes t JOIN jobs o ON o.id = t.job_id WHERE \($0)" }
        return
            "(SELECT COALESCE(MAX(row_takes.take), 0) FROM (\(raw: parts.joined(separator: " UNION ALL "))) AS row_takes)"
    }

    /// A job `j` never sent: pending or invalid, no task, no request in doubt, no earlier
    /// take, and no submission the service took or left unanswered. Only such a job may be dropped.
    public static let neverSent: SQL = """
        (j.state IN ('\(raw: JobState.pending.rawValue)', '\(raw: JobState.invalid.rawValue)') AND j.task_id IS NULL
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
    public static let rowValueCount = 9

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
    public static func heldByFeed(_ ingest: Int64, job: String) -> SQL {
        """
        EXISTS (SELECT 1 FROM (SELECT r.last_job_id FROM ingest_rows r
                               WHERE r.ingest_id = \(ingest) AND r.first_job_id <= \(raw: job).id
                               ORDER BY r.first_job_id DESC LIMIT 1) latest
                WHERE latest.last_job_id >= \(raw: job).id)
        """
    }

    /// Adds the variations that rows of feed `ingest` ask for and do not have: as many as
    /// the row's `takes` column says, else `takes`; each a pending copy of the row's first
    /// job, numbered after the row's latest take. Returns the ids of the jobs added.
    public static func addVariations(
        batch: Int64, ingest: Int64, now: String, takes: Int, dialect: SQLDialect
    ) -> SQL {
        """
        WITH RECURSIVE n(v) AS (SELECT 2 UNION ALL SELECT v + 1 FROM n WHERE v < \(raw: String(RowTakes.allowed.upperBound)))
        INSERT INTO jobs (
            row_key, keyed_by_content, source_line, prompt, audio_length, webhook_url, metadata, state,
            batch_id, created_at, updated_at, ingest_id, variation, take)
        SELECT f.row_key, f.keyed_by_content, f.source_line, f.prompt, f.audio_length, f.webhook_url, f.metadata,
            '\(raw: JobState.pending.rawValue)', f.batch_id, \(now), \(now), \(ingest), n.v,
            \(rowLatestTake("f")) + ROW_NUMBER() OVER (PARTITION BY f.row_key ORDER BY n.v)
        FROM jobs f JOIN n ON n.v <= COALESCE(\(dialect.jsonInteger("f.metadata", "takes")), \(takes))
        WHERE f.batch_id = \(batch) AND f.variation = 1 AND \(heldByFeed(ingest, job: "f"))
            AND f.state <> '\(raw: JobState.invalid.rawValue)'
            AND NOT EXISTS (
                SELECT 1 FROM jobs o
                WHERE o.batch_id = f.batch_id AND o.row_key = f.row_key AND o.variation > 1 AND o.variation = n.v)
        RETURNING id
        """
    }

    /// Sets the row's own columns (`metadata`) on every job of the row, each variation's
    /// through its own index.
    public static func updateRowColumns(batch: Int64, rowKey: String, to metadata: String?) -> SQL {
        """
        UPDATE jobs SET metadata = \(metadata)
        WHERE batch_id = \(batch) AND row_key = \(rowKey) AND (variation = 1 OR variation > 1)
        """
    }

    /// Column names, quoted, for a SELECT or INSERT of them (`ledger copy`).
    public static func columnList(_ columns: [String]) -> SQL {
        SQL(stringLiteral: columns.map { "\"\($0)\"" }.joined(separator: ", "))
    }

    /// The table of checks, alike on both backends but for the id's and the reals' types:
    /// one row a take (`job_id`, `take`), its numbers, and the findings made of them.
    /// The path of take `take`'s sound (an alias of `jobs` or `takes`, of job `jobID`) on this
    /// machine (`Machine.name`): the take's own when this machine saved it (or a ledger from
    /// before machines were named), else this machine's copy; null when it has none.
    public static func pathHere(_ take: String, jobID: String) -> SQL {
        let machine = Machine.name
        return """
            CASE WHEN \(raw: take).download_machine IS NULL OR \(raw: take).download_machine = \(machine)
                 THEN \(raw: take).download_path
                 ELSE (SELECT here.path FROM sound_copies here
                       WHERE here.job_id = \(raw: jobID) AND here.take = \(raw: take).take AND here.machine = \(machine)) END
            """
    }

    /// Where a machine other than the one that saved a take's sound keeps its own copy (the
    /// saver's path is in the take's `download_path`, its machine in `download_machine`), and
    /// the column that says which machine saved the take's file.
    public static let soundCopies = [
        "ALTER TABLE jobs ADD COLUMN download_machine TEXT",
        "ALTER TABLE takes ADD COLUMN download_machine TEXT",
        """
        CREATE TABLE sound_copies (
            job_id BIGINT NOT NULL REFERENCES jobs(id),
            take INTEGER NOT NULL,
            machine TEXT NOT NULL,
            path TEXT NOT NULL,
            path_key TEXT NOT NULL,
            size BIGINT NOT NULL,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (job_id, take, machine)
        )
        """,
        "CREATE INDEX sound_copies_by_path ON sound_copies(machine, path_key)"
    ]

    public static func checksTable(id: String, real: String) -> String {
        """
        CREATE TABLE checks (
            id \(id),
            job_id BIGINT NOT NULL REFERENCES jobs(id),
            take INTEGER NOT NULL,
            checked_at TEXT NOT NULL,
            settings TEXT NOT NULL,
            sound_sha256 TEXT,
            seconds \(real),
            loudness_lufs \(real),
            loudness_range \(real),
            sample_peak_dbfs \(real),
            true_peak_dbtp \(real),
            overs INTEGER,
            flat_runs INTEGER,
            dc_offset_dbfs \(real),
            leading_silence \(real),
            trailing_silence \(real),
            longest_gap \(real),
            fingerprint TEXT,
            findings TEXT NOT NULL,
            duplicate_of INTEGER,
            problem TEXT
        )
        """
    }
}
