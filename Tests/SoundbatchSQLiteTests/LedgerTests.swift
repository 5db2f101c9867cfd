import Foundation
import GRDB
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

@Suite struct LedgerTests {
    let folder = try! TemporaryFolder()

    /// A ledger as the release with `migration` as its last left it, filled by `fill`:
    /// the path, closed, for the current soundbatch to open and upgrade.
    func olderLedger(
        _ name: String, upTo migration: String, _ fill: @escaping @Sendable (Database) throws -> Void
    )
        async throws -> String
    {
        let path = folder.file(name)
        let old = try DatabaseQueue(path: path)
        try SQLiteLedger.migrator.migrate(old, upTo: migration)
        try await old.write(fill)
        try old.close()
        return path
    }

    @Test func aNewLedgerIsPrivateAndInWALMode() async throws {
        let path = folder.file("new.sqlite")
        let ledger = try SQLiteLedger(path: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try await ledger.database.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        #expect(try await ledger.database.read { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)  // FULL
        #expect(try await ledger.database.read { try Int.fetchOne($0, sql: "PRAGMA page_size") } == 16_384)
        #expect(
            try await ledger.database.read { try SQLiteLedger.migrator.appliedIdentifiers($0) }
                == Set(SQLiteLedger.migrator.migrations))
    }

    @Test func reopeningAnExistingLedgerKeepsItsJobs() async throws {
        let path = folder.file("l.sqlite")
        _ = try await SQLiteLedger(path: path).ingest(
            CSVReader(path: folder.write("a.csv", "prompt\nhi\n")), batch: "a", skipInvalid: false)
        let reopened = try SQLiteLedger(path: path)
        #expect(try await reopened.status().map(\.jobs) == [1])
    }

    /// The first feed skips the WAL (nothing to save under a rollback journal) and hands the
    /// ledger back in WAL mode; with the file open elsewhere it stays in WAL and still feeds.
    @Test func aFirstFeedLeavesTheLedgerInWALModeWithItsRows() async throws {
        let path = folder.file("first.sqlite")
        let ledger = try SQLiteLedger(path: path)
        let csv = try folder.write("a.csv", "id,prompt\na,door\nb,wind\n")
        let first = try await ledger.ingest(CSVReader(path: csv), batch: "a", skipInvalid: false)
        #expect(first.newJobs == 2)
        #expect(try await ledger.database.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        #expect(!FileManager.default.fileExists(atPath: path + "-journal"))

        let other = folder.file("held.sqlite")
        let held = try SQLiteLedger(path: other)
        let watcher = try DatabasePool(path: other)  // holds the WAL open, as a `status` running beside would
        _ = try await watcher.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM jobs") }
        #expect(try await held.ingest(CSVReader(path: csv), batch: "a", skipInvalid: false).newJobs == 2)
        #expect(try await watcher.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM jobs") } == 2)
        #expect(try await held.database.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
    }

    /// v12 turned each job's `seen_ingest_id` into runs of ids per feed (`ingest_rows`).
    @Test func aV11LedgersLastFeedOfEachRowBecomesRunsOfIDs() async throws {
        let path = try await olderLedger("v11.sqlite", upTo: "v11: takes paid twice") { db in
            try db.execute(sql: "INSERT INTO batches (name, created_at) VALUES ('b', 'x')")
            try db.execute(
                sql: "INSERT INTO ingests (batch_id, source_file, started_at) VALUES (1, 'f', 'x'), (1, 'g', 'y')")
            // Rows 1, 2 and 5 were last in the second file, 3 and 4 only in the first; job 6
            // is a variation (of row 1), which the runs leave out.
            for (id, seen, variation) in [(1, 2, 1), (2, 2, 1), (3, 1, 1), (4, 1, 1), (5, 2, 1), (6, 2, 2)] {
                try db.execute(
                    sql: """
                        INSERT INTO jobs (id, batch_id, row_key, source_line, prompt, state, created_at, updated_at,
                                          ingest_id, seen_ingest_id, variation)
                        VALUES (?, 1, ?, ?, 'p', 'pending', 'x', 'x', 1, ?, ?)
                        """,
                    arguments: [id, variation == 1 ? "k\(id)" : "k1", id + 1, seen, variation])
            }
        }
        let ledger = try SQLiteLedger(path: path)
        let runs = try ledger.database.read {
            try Row.fetchAll(
                $0, sql: "SELECT ingest_id, first_job_id, last_job_id FROM ingest_rows ORDER BY first_job_id")
        }
        #expect(runs.map { [$0[0] as Int, $0[1] as Int, $0[2] as Int] } == [[2, 1, 2], [1, 3, 4], [2, 5, 5]])
        #expect(
            try await ledger.database.read { try $0.columns(in: "jobs").map(\.name) }.contains("seen_ingest_id")
                == false)
    }

    /// v13: one word for each idea, in the rows an older soundbatch wrote.
    @Test func aV12LedgersJobsInDoubtAndLooksAreCalledSo() async throws {
        let path = try await olderLedger("v12.sqlite", upTo: "v12: the rows a feed's file held, as runs of ids") { db in
            try db.execute(sql: "INSERT INTO batches (name, created_at) VALUES ('b', 'x')")
            try db.execute(sql: "INSERT INTO ingests (batch_id, source_file, started_at) VALUES (1, 'f', 'x')")
            try db.execute(
                sql: """
                    INSERT INTO jobs (batch_id, row_key, source_line, prompt, state, created_at, updated_at, ingest_id)
                    VALUES (1, 'k1', 2, 'p', 'ambiguous', 'x', 'x', 1), (1, 'k2', 3, 'p', 'submitted', 'x', 'x', 1);
                    INSERT INTO takes (job_id, state, request_in_doubt, retired_at) VALUES (2, 'ambiguous', 1, 'x');
                    INSERT INTO attempts (job_id, kind, started_at) VALUES (1, 'submit', 'x'), (2, 'poll', 'x');
                    """)
        }
        let ledger = try SQLiteLedger(path: path)
        let words = try await ledger.database.read {
            try String.fetchAll(
                $0,
                sql:
                    "SELECT state FROM jobs UNION ALL SELECT state FROM takes UNION ALL SELECT kind FROM attempts ORDER BY 1"
            )
        }
        #expect(words == ["in_doubt", "in_doubt", "look", "submit", "submitted"])
        #expect(try await ledger.database.read { try $0.columns(in: "jobs").map(\.name) }.contains("runner_id"))
    }

    @Test func anOlderLedgerIsUpgradedInPlace() async throws {
        // A ledger as the first version left it, with a job in it.
        let path = try await olderLedger("old.sqlite", upTo: "v1") { db in
            try db.execute(sql: "INSERT INTO batches (name, created_at) VALUES ('b', 'x')")
            try db.execute(sql: "INSERT INTO ingests (batch_id, source_file, started_at) VALUES (1, 'f', 'x')")
            try db.execute(
                sql: """
                    INSERT INTO jobs (batch_id, row_key, source_line, prompt, state, created_at, updated_at, ingest_id, seen_ingest_id)
                    VALUES (1, 'k', 2, 'p', 'pending', 'x', 'x', 1, 1)
                    """)
        }
        let ledger = try SQLiteLedger(path: path)
        #expect(
            try await ledger.database.read { try SQLiteLedger.migrator.appliedIdentifiers($0) }.count
                == SQLiteLedger.migrator.migrations.count)
        #expect(try await ledger.database.read { try $0.indexes(on: "jobs").map(\.name) }.contains("jobs_by_task"))
        #expect(try await ledger.status().map(\.jobs) == [1])
        // Its pages kept as they were.
        #expect(try await ledger.database.read { try Int.fetchOne($0, sql: "PRAGMA page_size") } == 4_096)
    }

    /// A ledger as the previous release (schema v2) wrote it, made with that release's own
    /// SQL, holding a job in every state the report counts apart.
    static let v2Ledger = """
        CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
        INSERT INTO grdb_migrations VALUES ('v1'), ('v2: find jobs by task_id');
        CREATE TABLE batches (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, source_file TEXT, created_at TEXT NOT NULL);
        CREATE TABLE ingests (
            id INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL REFERENCES batches(id), source_file TEXT NOT NULL,
            started_at TEXT NOT NULL, new_jobs INTEGER NOT NULL DEFAULT 0, known_jobs INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL REFERENCES batches(id), row_key TEXT NOT NULL,
            source_line INTEGER NOT NULL, prompt TEXT NOT NULL, audio_length INTEGER, webhook_url TEXT, metadata TEXT,
            state TEXT NOT NULL, attempt_count INTEGER NOT NULL DEFAULT 0, task_id TEXT, conversion_id TEXT, eta INTEGER,
            credit_estimate REAL, message TEXT, last_error TEXT, last_http_status INTEGER, created_at TEXT NOT NULL,
            submitted_at TEXT, updated_at TEXT NOT NULL, remote_status TEXT, status_msg TEXT, audio_url TEXT,
            conversion_cost REAL, completed_at TEXT, download_path TEXT, download_size INTEGER, download_sha256 TEXT,
            ingest_id INTEGER NOT NULL REFERENCES ingests(id), seen_ingest_id INTEGER NOT NULL);
        CREATE UNIQUE INDEX jobs_by_key ON jobs(batch_id, row_key);
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES jobs(id), kind TEXT NOT NULL,
            started_at TEXT NOT NULL, finished_at TEXT, http_status INTEGER, error TEXT, latency_ms INTEGER);
        CREATE INDEX attempts_by_job ON attempts(job_id);
        CREATE INDEX jobs_by_task ON jobs(task_id) WHERE task_id IS NOT NULL;

        INSERT INTO batches VALUES (1, 'b', '/x/b.csv', '2026-11-20T09:00:00.000Z');
        INSERT INTO ingests VALUES (1, 1, '/x/b.csv', '2026-11-20T09:00:00.000Z', 8, 0);
        INSERT INTO jobs (id, batch_id, row_key, source_line, prompt, audio_length, state, task_id, credit_estimate,
                          conversion_cost, last_error, submitted_at, created_at, updated_at, ingest_id, seen_ingest_id)
        VALUES
            (1, 1, '~0123456789abcdef0123456789abcdef-1', 2, 'rain', NULL, 'pending', NULL, NULL, NULL, NULL, NULL, 'x', 'x', 1, 1),
            (2, 1, '~door', 3, 'door', 5, 'submitted', 't2', 2.5, NULL, NULL, '2026-11-20T10:00:00.000Z', 'x', 'x', 1, 1),
            (3, 1, 'c', 4, 'wind', NULL, 'ambiguous', NULL, NULL, NULL, 'no answer: reset', NULL, 'x', 'x', 1, 1),
            (4, 1, 'd', 5, 'fire', NULL, 'failed', NULL, NULL, NULL,
             'bad prompt; an earlier request got no answer, so the service may hold a task (and a charge) for this job',
             NULL, 'x', 'x', 1, 1),
            (5, 1, 'e', 6, 'ice', NULL, 'failed', NULL, NULL, NULL, 'bad prompt', NULL, 'x', 'x', 1, 1),
            (6, 1, 'f', 7, 'bell', 7, 'completed', 't6', 3.0, 3.3, NULL, '2026-11-20T10:01:00.000Z', 'x', 'x', 1, 1),
            (7, 1, 'g', 8, 'hum', 8, 'generation_failed', 't7', 1.5, 0.5, NULL, '2026-11-20T10:03:00.000Z', 'x', 'x', 1, 1),
            (8, 1, 'h', 9, 'drip', NULL, 'submitting', NULL, NULL, NULL, NULL, NULL, 'x', 'x', 1, 1);
        INSERT INTO attempts (job_id, kind, started_at, finished_at, http_status, error) VALUES
            (2, 'submit', 'x', 'x', 200, NULL),
            (2, 'poll', 'x', 'x', 200, NULL),
            (3, 'submit', 'x', 'x', NULL, 'no answer: the connection was closed before the answer'),
            (4, 'submit', 'x', 'x', NULL, 'no answer: timed out waiting for the answer'),
            (4, 'submit', 'x', 'x', 422, 'bad prompt; an earlier request got no answer'),
            (5, 'submit', 'x', 'x', 503, 'HTTP 503: busy'),
            (5, 'submit', 'x', 'x', 422, 'bad prompt'),
            (8, 'submit', 'x', NULL, NULL, NULL);
        """

    @Test func aV2LedgerUpgradesToV3AndReportsTheSameTotals() async throws {
        let path = folder.file("v2.sqlite")
        let old = try DatabaseQueue(path: path)
        try await old.write { try $0.execute(sql: Self.v2Ledger) }
        // What the previous release's report counted as "no charge yet", by its own rule.
        let unchargedBefore = try await old.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) FROM jobs WHERE state IN ('submitted', 'submitting', 'ambiguous')
                        OR (state = 'failed' AND instr(last_error, 'an earlier request got no answer') > 0)
                    """)
        }
        try old.close()

        let ledger = try SQLiteLedger(path: path, create: false)
        #expect(
            try await ledger.database.read { try SQLiteLedger.migrator.appliedIdentifiers($0) }.contains(
                "v3: facts as columns"))
        let total = try await ledger.spendReport(ReportQuery()).total
        #expect(total.jobs == 8)
        #expect(total.creditsEstimated == 7.0 && total.creditsCharged == 3.8)
        #expect(unchargedBefore == 4 && total.unchargedJobs == 4)  // submitted, submitting, ambiguous, d
        #expect(total.unchargedEstimate == 2.5)

        let facts = try ledger.database.read { db in
            try Row.fetchAll(db, sql: "SELECT row_key, keyed_by_content, request_in_doubt FROM jobs ORDER BY id")
        }
        #expect(facts.map { $0["keyed_by_content"] as Bool } == [true, false, false, false, false, false, false, false])
        #expect(facts.map { $0["request_in_doubt"] as Bool } == [false, false, true, true, false, false, false, true])
        let outcomes = try await ledger.database.read {
            try String.fetchAll($0, sql: "SELECT outcome FROM attempts ORDER BY id")
        }
        #expect(
            outcomes == [
                "accepted", "found", "no_answer", "no_answer", "rejected", "retryable", "rejected", "interrupted"
            ])
        // Every row is still there, and the ledger goes on working.
        #expect(try await ledger.status(batch: nil).map(\.jobs) == [8])
        #expect(try await ledger.holdInterruptedSubmissions() == 1)
    }

    @Test func aV6LedgersEarlierTakesAreNumberedInOrder() async throws {
        let path = try await olderLedger("v6.sqlite", upTo: "v6: download keys") { db in
            try db.execute(
                sql: """
                    INSERT INTO batches (id, name, created_at) VALUES (1, 'b', 'x');
                    INSERT INTO ingests (id, batch_id, source_file, started_at) VALUES (1, 1, 'b.csv', 'x');
                    INSERT INTO jobs (
                        id, batch_id, row_key, source_line, prompt, state, created_at, updated_at, ingest_id,
                        seen_ingest_id)
                    VALUES (1, 1, 'a', 2, 'door', 'completed', 'x', 'x', 1, 1), (2, 1, 'b', 3, 'rain', 'pending', 'x', 'x', 1, 1);
                    INSERT INTO takes (job_id, state, task_id, request_in_doubt, retired_at)
                    VALUES (1, 'failed', 't1', 0, 'x'), (1, 'completed', 't2', 0, 'y');
                    """)
        }
        let ledger = try SQLiteLedger(path: path)
        let (takes, jobs) = try await ledger.database.read { db in
            (
                try Int.fetchAll(db, sql: "SELECT take FROM takes ORDER BY id"),
                try Int.fetchAll(db, sql: "SELECT take FROM jobs ORDER BY id")
            )
        }
        #expect(takes == [1, 2] && jobs == [3, 1])
    }

    @Test func aLedgerFromTheFutureIsRefusedAndLeftAlone() async throws {
        let path = folder.file("future.sqlite")
        _ = try SQLiteLedger(path: path)
        try await DatabaseQueue(path: path).write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v999')")
        }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect {
            _ = try SQLiteLedger(path: path)
        } throws: { error in
            "\(error)".contains("newer soundbatch")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func unusablePathsGiveClearErrors() async throws {
        #expect { try SQLiteLedger(path: folder.file("no/such/dir/l.sqlite")) } throws: {
            "\($0)".contains("no/such/dir does not exist")
        }
        #expect { try SQLiteLedger(path: folder.path) } throws: { "\($0)".contains("is a folder") }
        let garbage = try folder.write("garbage.sqlite", String(repeating: "not a database ", count: 100))
        #expect { try SQLiteLedger(path: garbage) } throws: { error in
            guard case LedgerError.cannotOpen(garbage, _) = error else { return false }
            return "\(error)".contains("not a database")
        }
    }

    @Test func ledgerPathComesFromOptionThenEnvironmentThenDefault() {
        #expect(
            LedgerLocation.resolve(option: "x.sqlite", environment: ["SOUNDBATCH_LEDGER": "y.sqlite"]) == "x.sqlite")
        #expect(LedgerLocation.resolve(option: nil, environment: ["SOUNDBATCH_LEDGER": "y.sqlite"]) == "y.sqlite")
        #expect(LedgerLocation.resolve(option: nil, environment: [:]) == "soundbatch.sqlite")
    }
}
