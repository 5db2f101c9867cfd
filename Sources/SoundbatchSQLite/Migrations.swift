import GRDB
import SoundbatchCore

extension SQLiteLedger {
    /// Each migration upgrades older ledgers in place. Never edit a registered
    /// migration: add a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
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
        migrator.registerMigration("v3: facts as columns") { db in
            // What the code used to read out of message text is kept as columns, so that no
            // rewording can change a report. Existing rows get their facts from that text,
            // the one time it is read.
            try db.execute(
                sql: """
                    -- What came of each attempt (AttemptOutcome).
                    ALTER TABLE attempts ADD COLUMN outcome TEXT;
                    -- A request of the job got no answer: the service may hold a task, and a charge, for it.
                    ALTER TABLE jobs ADD COLUMN request_in_doubt INTEGER NOT NULL DEFAULT 0;
                    -- row_key is a hash of the row's content (the file had no id column), not the row's own id.
                    ALTER TABLE jobs ADD COLUMN keyed_by_content INTEGER NOT NULL DEFAULT 0;

                    UPDATE attempts SET outcome = CASE
                        WHEN finished_at IS NULL THEN 'interrupted'
                        WHEN kind = 'poll' THEN CASE
                            WHEN http_status BETWEEN 200 AND 299 AND error IS NULL THEN 'found'
                            WHEN http_status IN (401, 403) THEN 'key_rejected'
                            ELSE 'retryable' END
                        WHEN http_status BETWEEN 200 AND 299 AND error IS NULL THEN 'accepted'
                        WHEN http_status IS NULL AND error LIKE 'no answer%' THEN 'no_answer'
                        WHEN http_status IS NULL THEN 'retryable'
                        WHEN http_status IN (401, 403) THEN 'key_rejected'
                        WHEN http_status = 402 THEN 'out_of_credits'
                        WHEN http_status IN (408, 429) OR http_status >= 500 THEN 'retryable'
                        WHEN http_status BETWEEN 200 AND 299 AND error LIKE 'HTTP%' THEN 'no_answer'
                        ELSE 'rejected' END;

                    UPDATE jobs SET request_in_doubt = 1
                    WHERE state = 'ambiguous'
                       OR (state = 'failed' AND instr(last_error, 'an earlier request got no answer') > 0)
                       OR EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = jobs.id AND a.kind = 'submit'
                                  AND a.outcome IN ('no_answer', 'interrupted'));

                    -- Content keys were written "~" and 32 hex digits, then "-" and the occurrence.
                    UPDATE jobs SET keyed_by_content = 1
                    WHERE row_key GLOB '~' || replace(hex(zeroblob(32)), '00', '[0-9a-f]') || '-[0-9]*';
                    """)
        }
        migrator.registerMigration("v4: batches remember how they are run") { db in
            // BatchSettings as JSON: the service, pace, retries, budget, waiting and downloads.
            try db.execute(sql: "ALTER TABLE batches ADD COLUMN settings TEXT")
        }
        migrator.registerMigration("v5: earlier takes") { db in
            // A job retried keeps what its earlier take was given: task, answers, charge, file.
            try db.execute(
                sql: """
                    CREATE TABLE takes (
                        id INTEGER PRIMARY KEY,
                        job_id INTEGER NOT NULL REFERENCES jobs(id),
                        state TEXT NOT NULL,
                        task_id TEXT,
                        conversion_id TEXT,
                        eta INTEGER,
                        credit_estimate REAL,
                        conversion_cost REAL,
                        remote_status TEXT,
                        status_msg TEXT,
                        audio_url TEXT,
                        download_path TEXT,
                        download_size INTEGER,
                        download_sha256 TEXT,
                        last_error TEXT,
                        last_http_status INTEGER,
                        request_in_doubt INTEGER NOT NULL,
                        submitted_at TEXT,
                        completed_at TEXT,
                        retired_at TEXT NOT NULL
                    );
                    CREATE INDEX takes_by_job ON takes(job_id);
                    """)
        }
        migrator.registerMigration("v6: download keys") { db in
            // Who has a file's name, compared as a file system that ignores case would:
            // `FileNames.caseKey`, written with the path, and found by an index.
            try db.execute(
                sql: """
                    ALTER TABLE jobs ADD COLUMN download_key TEXT;
                    UPDATE jobs SET download_key = swiftLowercaseString(download_path) WHERE download_path IS NOT NULL;
                    CREATE INDEX jobs_by_download_key ON jobs(download_key) WHERE download_key IS NOT NULL;
                    """)
        }
        migrator.registerMigration("v7: takes numbered, verdicts, waveforms") { db in
            // Each take of a job has its number (1 for the first), the prompt that made it,
            // a verdict (kept or rejected), and, once its sound is saved, a waveform (peaks,
            // base64 of 0-255 values) and length.
            try db.execute(
                sql: """
                    ALTER TABLE jobs ADD COLUMN take INTEGER NOT NULL DEFAULT 1;
                    ALTER TABLE jobs ADD COLUMN take_prompt TEXT;
                    ALTER TABLE jobs ADD COLUMN verdict TEXT;
                    ALTER TABLE jobs ADD COLUMN peaks TEXT;
                    ALTER TABLE jobs ADD COLUMN audio_seconds REAL;
                    ALTER TABLE takes ADD COLUMN take INTEGER NOT NULL DEFAULT 1;
                    ALTER TABLE takes ADD COLUMN prompt TEXT;
                    ALTER TABLE takes ADD COLUMN verdict TEXT;
                    ALTER TABLE takes ADD COLUMN peaks TEXT;
                    ALTER TABLE takes ADD COLUMN audio_seconds REAL;
                    UPDATE takes SET take = (SELECT COUNT(*) FROM takes o WHERE o.job_id = takes.job_id AND o.id <= takes.id);
                    UPDATE jobs SET take = 1 + (SELECT COUNT(*) FROM takes t WHERE t.job_id = jobs.id)
                    WHERE id IN (SELECT job_id FROM takes);
                    """)
        }
        migrator.registerMigration("v8: variations of a row") { db in
            // A row asked for several sounds (`run --takes`, a `takes` column) has a job for
            // each: variation 1 is the one the feed writes, the others are added after it.
            // Two partial indexes rather than one over three columns: the feed's index stays
            // as it was (with the variation in it, a fresh feed of 200,000 rows went 7% slower).
            try db.execute(
                sql: """
                    ALTER TABLE jobs ADD COLUMN variation INTEGER NOT NULL DEFAULT 1;
                    DROP INDEX jobs_by_key;
                    CREATE UNIQUE INDEX jobs_by_key ON jobs(batch_id, row_key) WHERE variation = 1;
                    CREATE UNIQUE INDEX jobs_by_variation ON jobs(batch_id, row_key, variation) WHERE variation > 1;
                    """)
        }
        migrator.registerMigration("v9: requests settled by their callbacks") { db in
            // Each request may carry a token of its own in its callback URL, so that a
            // callback tells which request made its task, even when the request got no answer.
            // The ledger's identity lets a run know that a receiver writes to this ledger.
            try db.execute(
                sql: """
                    ALTER TABLE attempts ADD COLUMN callback_token TEXT;
                    CREATE UNIQUE INDEX attempts_by_callback_token ON attempts(callback_token)
                        WHERE callback_token IS NOT NULL;
                    ALTER TABLE jobs ADD COLUMN settled_by_callback INTEGER NOT NULL DEFAULT 0;
                    CREATE TABLE ledger_identity (id TEXT NOT NULL);
                    INSERT INTO ledger_identity (id) VALUES (lower(hex(randomblob(16))));
                    """)
        }
        migrator.registerMigration("v10: callbacks not yet confirmed") { db in
            // The task a request's callback named, kept when the service could not confirm it
            // then (down, or busy): a run confirms it later, and never resends its job meanwhile.
            try db.execute(sql: "ALTER TABLE attempts ADD COLUMN callback_task_id TEXT")
        }
        migrator.registerMigration("v11: takes paid twice") { db in
            // A take made by a request that got no answer, found by its callback after its
            // job was sent again: the service charged for both.
            try db.execute(sql: "ALTER TABLE takes ADD COLUMN paid_twice INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v12: the rows a feed's file held, as runs of ids") { db in
            // Which feed's file last held a row was a column of each job, rewritten for every
            // job each time a sheet was fed again: it is now a few runs of ids per feed.
            try db.execute(
                sql: """
                    CREATE TABLE ingest_rows (
                        id INTEGER PRIMARY KEY,
                        ingest_id INTEGER NOT NULL REFERENCES ingests(id),
                        first_job_id INTEGER NOT NULL,
                        last_job_id INTEGER NOT NULL
                    );
                    CREATE INDEX ingest_rows_by_ingest ON ingest_rows(ingest_id, first_job_id);
                    \(LedgerSQL.ingestRowsFromSeenColumn);
                    ALTER TABLE jobs DROP COLUMN seen_ingest_id;
                    """)
        }
        migrator.registerMigration("v13: one rule for both ledgers, one word for each idea") { db in
            // The runner that holds a job: always empty here, where one process sends; the rules
            // that clear it are the same for both ledgers (on PostgreSQL, whose claim the job is).
            // A job whose request got no answer is `in_doubt`, as its column says, and a status
            // request is a look, as everywhere else.
            try db.execute(
                sql: """
                    ALTER TABLE jobs ADD COLUMN runner_id INTEGER;
                    UPDATE jobs SET state = 'in_doubt' WHERE state = 'ambiguous';
                    UPDATE takes SET state = 'in_doubt' WHERE state = 'ambiguous';
                    UPDATE attempts SET kind = 'look' WHERE kind = 'poll';
                    """)
        }
        migrator.registerMigration("v14: every sound checked") { db in
            // What a check measured of each take's sound, and found wrong with it (`TakeCheck`).
            try db.execute(sql: LedgerSQL.checksTable(id: "INTEGER PRIMARY KEY", real: "REAL"))
            try db.execute(sql: "CREATE UNIQUE INDEX checks_by_take ON checks(job_id, take)")
        }
        migrator.registerMigration("v15: each machine's own copy of a sound") { db in
            // The sounds themselves stay in their files: the ledger and the files are on one machine.
            for statement in LedgerSQL.soundCopies { try db.execute(sql: statement) }
        }
        return migrator
    }
}
