import GRDB

extension SQLiteLedger {
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
}
