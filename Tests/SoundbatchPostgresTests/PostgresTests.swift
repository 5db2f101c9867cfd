import Foundation
import GRDB
import Logging
import PostgresNIO
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchPostgres
@testable import SoundbatchSQLite

@Suite struct DatabaseURLTests {
    @Test func aURLIsReadAndItsPasswordNeverShown() throws {
        let url = try DatabaseURL(
            "postgres://sound:s%40cret@db.example:6543/soundbatch?sslmode=require", environment: [:])
        #expect(url.user == "sound" && url.password == "s@cret" && url.host == "db.example" && url.port == 6543)
        #expect(url.database == "soundbatch" && url.tls.mode == .require)
        #expect(url.description == "postgres://sound:***@db.example:6543/soundbatch?sslmode=require")
        #expect(!url.description.contains("cret"))
        let plain = try DatabaseURL("postgresql://sound@db/soundbatch", environment: [:])
        #expect(plain.port == 5432 && plain.password == nil && plain.tls.mode == .prefer)
        #expect(DatabaseURL.isDatabaseURL("POSTGRES://x@y/z") && !DatabaseURL.isDatabaseURL("ledger.sqlite"))
    }

    @Test func aPasswordComesFromPGPASSWORDOrPgpass() throws {
        let folder = try TemporaryFolder()
        let pass = try folder.write("pgpass", "# comment\nother:*:*:*:no\ndb:5432:soundbatch:sound:from\\:file\n")
        let fromFile = try DatabaseURL("postgres://sound@db/soundbatch", environment: [:], passFile: pass)
        #expect(fromFile.password == "from:file")
        let fromEnvironment = try DatabaseURL(
            "postgres://sound@db/soundbatch", environment: ["PGPASSWORD": "env"], passFile: pass)
        #expect(fromEnvironment.password == "env")
    }

    @Test func aBrokenURLSaysWhatIsMissingWithoutItsPassword() {
        for (text, expected) in [
            ("postgres://u:secret@/db", "names no host"), ("postgres://u:secret@host", "names no database"),
            ("postgres://u:secret@host/db?sslmode=sometimes", "sslmode=sometimes")
        ] {
            #expect {
                try DatabaseURL(text, environment: [:])
            } throws: { error in
                "\(error)".contains(expected) && !"\(error)".contains("secret") && "\(error)".contains("***")
            }
        }
    }

    @Test func aServerThatIsNotThereIsSaidAtOnceWithoutThePassword() async throws {
        let folder = try TemporaryFolder()
        let result = try await soundbatch(["status", "--ledger", "postgres://u:secret@127.0.0.1:1/x"], in: folder.path)
        #expect(result.status == 74 && result.stderr.contains("connection refused"), "\(result.stderr)")
        #expect(result.stderr.contains("postgres://u:***@127.0.0.1:1/x") && !result.stderr.contains("secret"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)  // no file made
    }
}

/// The schema on a real PostgreSQL server.
@Suite struct PostgresSchemaTests {
    func columns(_ url: DatabaseURL) async throws -> [String: Set<String>] {
        try await withPostgres(url, logger: quietLogger()) { client in
            var tables: [String: Set<String>] = [:]
            let rows = try await client.query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public'"
            )
            for try await (table, column) in rows.decode((String, String).self) {
                tables[table, default: []].insert(column)
            }
            return tables
        }
    }

    @Test func theTablesAndColumnsAreTheSQLiteLedgers() async throws {
        let url = try await TestPostgres.shared.newDatabase()
        try await withPostgres(url, logger: quietLogger()) { client in
            try await PostgresSchema.migrate(client, location: url.description, logger: quietLogger())
        }
        let postgres = try await columns(url)
        let folder = try TemporaryFolder()
        let sqlite = try SQLiteLedger(path: folder.file("l.sqlite"))
        for table in [
            "batches", "ingests", "ingest_rows", "jobs", "attempts", "takes", "checks", "ledger_identity",
            "sound_copies"
        ] {
            let names = try await sqlite.database.read { db in
                Set(try Row.fetchAll(db, sql: "PRAGMA table_info(\(table))").map { $0["name"] as String })
            }
            // What runners sharing the ledger need besides: the runner holding each job.
            let shared: Set<String> = table == "jobs" ? ["runner_id"] : []
            #expect(postgres[table] == names.union(shared), "\(table)")
        }
        #expect(postgres["soundbatch_schema"] == ["version"])
        #expect(postgres["runners"] != nil && postgres["key_budgets"] != nil)
        // The team's sounds: a SQLite ledger's are the files beside it.
        #expect(postgres["sounds"] == ["sha256", "size", "stored_at"])
        #expect(postgres["sound_chunks"] == ["sha256", "seq", "data"])
        #expect(
            Set(postgres.keys).subtracting(["runners", "key_budgets", "soundbatch_schema", "sounds", "sound_chunks"])
                .count == 9)
    }

    @Test func runnersStartingTogetherMigrateOnceAndALaterOneChangesNothing() async throws {
        let url = try await TestPostgres.shared.newDatabase()
        try await withPostgres(url, logger: quietLogger()) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await PostgresSchema.migrate(client, location: url.description, logger: quietLogger())
                    }
                }
                try await group.waitForAll()
            }
            try await PostgresSchema.migrate(client, location: url.description, logger: quietLogger())
            let versions = try await client.query("SELECT version FROM soundbatch_schema").decode(Int.self)
            var all: [Int] = []
            for try await version in versions { all.append(version) }
            #expect(all == [PostgresSchema.version])
        }
    }

    /// Version 13 turned each job's `seen_ingest_id` into runs of ids per feed, as SQLite's v12.
    @Test func aVersion12LedgersLastFeedOfEachRowBecomesRunsOfIDs() async throws {
        let url = try await TestPostgres.shared.newDatabase()
        try await withPostgres(url, logger: quietLogger()) { client in
            try await PostgresSchema.migrate(client, location: url.description, upTo: 12, logger: quietLogger())
            try await client.query("INSERT INTO batches (id, name, created_at) VALUES (1, 'b', 'x')")
            try await client.query(
                "INSERT INTO ingests (id, batch_id, source_file, started_at) VALUES (1, 1, 'f', 'x'), (2, 1, 'g', 'y')")
            // Rows 1, 2 and 5 were last in the second file, 3 and 4 only in the first; job 6 is a variation.
            try await client.query(
                """
                INSERT INTO jobs (id, batch_id, row_key, source_line, prompt, state, created_at, updated_at,
                                  ingest_id, seen_ingest_id, variation)
                VALUES (1, 1, 'k1', 2, 'p', 'pending', 'x', 'x', 1, 2, 1), (2, 1, 'k2', 3, 'p', 'pending', 'x', 'x', 1, 2, 1),
                       (3, 1, 'k3', 4, 'p', 'pending', 'x', 'x', 1, 1, 1), (4, 1, 'k4', 5, 'p', 'pending', 'x', 'x', 1, 1, 1),
                       (5, 1, 'k5', 6, 'p', 'pending', 'x', 'x', 1, 2, 1), (6, 1, 'k1', 2, 'p', 'pending', 'x', 'x', 1, 2, 2)
                """)
            try await PostgresSchema.migrate(client, location: url.description, logger: quietLogger())
            var runs: [[Int]] = []
            for try await (ingest, first, last) in try await client.query(
                "SELECT ingest_id, first_job_id, last_job_id FROM ingest_rows ORDER BY first_job_id"
            ).decode((Int, Int, Int).self) {
                runs.append([ingest, first, last])
            }
            #expect(runs == [[2, 1, 2], [1, 3, 4], [2, 5, 5]])
        }
        #expect(try await columns(url)["jobs"]?.contains("seen_ingest_id") == false)
    }

    /// Version 14: one word for each idea, in the rows an older soundbatch wrote.
    @Test func aVersion13LedgersJobsInDoubtAndLooksAreCalledSo() async throws {
        let url = try await TestPostgres.shared.newDatabase()
        try await withPostgres(url, logger: quietLogger()) { client in
            try await PostgresSchema.migrate(client, location: url.description, upTo: 13, logger: quietLogger())
            try await client.query("INSERT INTO batches (id, name, created_at) VALUES (1, 'b', 'x')")
            try await client.query(
                "INSERT INTO ingests (id, batch_id, source_file, started_at) VALUES (1, 1, 'f', 'x')")
            try await client.query(
                """
                INSERT INTO jobs (id, batch_id, row_key, source_line, prompt, state, created_at, updated_at, ingest_id)
                VALUES (1, 1, 'k1', 2, 'p', 'ambiguous', 'x', 'x', 1), (2, 1, 'k2', 3, 'p', 'submitted', 'x', 'x', 1)
                """)
            try await client.query(
                "INSERT INTO takes (job_id, state, request_in_doubt, retired_at) VALUES (2, 'ambiguous', 1, 'x')")
            try await client.query(
                "INSERT INTO attempts (job_id, kind, started_at) VALUES (1, 'submit', 'x'), (2, 'poll', 'x')")
            try await PostgresSchema.migrate(client, location: url.description, logger: quietLogger())
            var found: [String] = []
            for try await word in try await client.query(
                """
                SELECT state FROM jobs UNION ALL SELECT state FROM takes UNION ALL SELECT kind FROM attempts ORDER BY 1
                """
            ).decode(String.self) {
                found.append(word)
            }
            #expect(found == ["in_doubt", "in_doubt", "look", "submit", "submitted"])
        }
    }

    @Test func aDatabaseFromANewerSoundbatchIsRefusedUntouched() async throws {
        let url = try await TestPostgres.shared.newDatabase()
        try await withPostgres(url, logger: quietLogger()) { client in
            try await PostgresSchema.migrate(client, location: url.description, logger: quietLogger())
            try await client.query("UPDATE soundbatch_schema SET version = 99")
            try await client.query("CREATE TABLE from_the_future (x INTEGER)")
        }
        let before = try await columns(url)
        await #expect {
            try await withPostgres(url, logger: quietLogger()) { client in
                try await PostgresSchema.migrate(client, location: url.description, logger: quietLogger())
            }
        } throws: { error in
            guard case .fromTheFuture? = error as? LedgerError else { return false }
            return true
        }
        #expect(try await columns(url) == before)
    }
}

/// Several runners on one PostgreSQL ledger: claims, leases, and the server going away.
@Suite struct PostgresRunnerTests {
    /// Runs `body` with two ledgers on one new database: two runners, as on two machines.
    func withTwoRunners(
        jobs: Int, lease: Duration = .seconds(30),
        _ body: (PostgresLedger, PostgresLedger, Int64) async throws -> Void
    ) async throws {
        let url = try await TestPostgres.shared.newDatabase()
        let folder = try TemporaryFolder()
        try await withPostgresLedger(url, create: true, lease: lease, logger: quietLogger()) { first in
            _ = try await first.ingest(
                CSVReader(path: folder.writeJobs(jobs, prompt: "p")), batch: "b", skipInvalid: false)
            try await withPostgresLedger(url, create: true, lease: lease, logger: quietLogger()) { second in
                try await body(first, second, try await first.batchID(named: "b"))
            }
        }
    }

    /// Sends every job the runner can claim, each accepted; returns the ids it sent.
    func sendAll(_ ledger: PostgresLedger, batchID: Int64) async throws -> [Int64] {
        try await ledger.withSending(batch: "b") { _ in
            var sent: [Int64] = []
            while true {
                let claimed = try await ledger.pendingJobs(batchID: batchID, afterID: 0, limit: 512)
                if claimed.isEmpty { return sent }
                for job in claimed {
                    let attempt = try await ledger.markSubmitting(jobID: job.id, now: Date())
                    try await ledger.recordSubmission(
                        jobID: job.id, attemptID: attempt, outcome: .accepted(SubmitAnswer(taskID: "t\(job.id)")),
                        state: .submitted, latency: .zero, now: Date())
                    sent.append(job.id)
                }
            }
        }
    }

    func count(_ ledger: PostgresLedger, _ sql: String) async throws -> Int {
        try await ledger.value(SQL(stringLiteral: sql))
    }

    @Test func twoRunnersNeverSendTheSameJob() async throws {
        try await withTwoRunners(jobs: 300) { first, second, batchID in
            async let a = sendAll(first, batchID: batchID)
            async let b = sendAll(second, batchID: batchID)
            let (fromFirst, fromSecond) = try await (a, b)
            #expect(Set(fromFirst).isDisjoint(with: fromSecond))
            #expect(fromFirst.count + fromSecond.count == 300 && !fromFirst.isEmpty && !fromSecond.isEmpty)
            #expect(try await count(first, "SELECT COUNT(*) FROM attempts") == 300)
            // A clean stop lets go of everything.
            #expect(try await count(first, "SELECT COUNT(*) FROM jobs WHERE runner_id IS NOT NULL") == 0)
            #expect(try await count(first, "SELECT COUNT(*) FROM runners") == 0)
        }
    }

    @Test func aLiveRunnersRequestsAreNeverHeldADeadOnesAreOnceItsLeaseRunsOut() async throws {
        // Leases of 4 s: a busy machine (the whole suite at once) has held a renewal up for 2 s.
        try await withTwoRunners(jobs: 3, lease: .seconds(4)) { first, second, batchID in
            // A runner that died holding a request: its lease ran out a while ago.
            _ = try await first.rows(
                """
                INSERT INTO runners (id, batch_id, host, pid, started_at, lease_until)
                VALUES (900, \(batchID), 'gone', 1, 'x', clock_timestamp() - interval '1 second')
                """)
            _ = try await first.rows(
                "UPDATE jobs SET state = 'submitting', runner_id = 900 WHERE id = (SELECT MIN(id) FROM jobs)")
            try await first.withSending(batch: "b") { _ in
                let job = try await first.pendingJobs(batchID: batchID, afterID: 0, limit: 1)[0]
                _ = try await first.markSubmitting(jobID: job.id, now: Date())
                // Three leases long: the first runner renews its own all along.
                try await Task.sleep(for: .seconds(12))
                #expect(try await second.holdInterruptedSubmissions(now: Date()) == 0)
                #expect(try await first.state(jobID: job.id) == .submitting)
                #expect(try await second.state(jobID: 1) == .inDoubt)  // held by the first's renewals
            }
            // Stopped cleanly with a request unanswered: held at once, not after a lease.
            #expect(try await count(first, "SELECT COUNT(*) FROM jobs WHERE state = 'in_doubt'") == 2)
        }
    }

    @Test func aTaskIsFollowedByOneRunnerAtATime() async throws {
        try await withTwoRunners(jobs: 20) { first, second, batchID in
            _ = try await sendAll(first, batchID: batchID)
            try await first.withFollowing(batch: "b") { _ in
                #expect(try await first.submittedJobs(batchID: batchID).count == 20)
                try await second.withFollowing(batch: "b") { _ async throws in
                    #expect(try await second.submittedJobs(batchID: batchID).isEmpty)
                }
            }
            try await second.withFollowing(batch: "b") { _ async throws in
                #expect(try await second.submittedJobs(batchID: batchID).count == 20)
            }
        }
    }

    @Test func aJobRetriedWhileALiveRunnerFollowsItIsFreeForAnyRunner() async throws {
        try await withTwoRunners(jobs: 2) { first, second, batchID in
            let sent = try await sendAll(first, batchID: batchID)
            try await first.withFollowing(batch: "b") { _ in
                #expect(try await first.submittedJobs(batchID: batchID).count == 2)
                for id in sent { try await first.recordStatus(jobID: id, RemoteStatus(status: "FAILED"), now: Date()) }
                // Retried while the first runner still lives: the second may send it.
                #expect(try await first.startNewTakes(jobIDs: sent, prompts: [:], now: Date()) == 2)
                let claimed = try await second.withSending(batch: "b") { _ in
                    try await second.pendingJobs(batchID: batchID, afterID: 0, limit: 8)
                }
                #expect(claimed.count == 2)
            }
        }
    }

    @Test func anAnswerForAJobThatMovedOnIsKeptAsAnEarlierTake() async throws {
        try await withTwoRunners(jobs: 1) { first, second, batchID in
            let job = try await first.withSending(batch: "b") { _ in
                let job = try await first.pendingJobs(batchID: batchID, afterID: 0, limit: 1)[0]
                let attempt = try await first.markSubmitting(jobID: job.id, now: Date())
                // Meanwhile the job was held in doubt and sent again at the user's request.
                _ = try await first.rows("UPDATE jobs SET state = 'pending', runner_id = NULL")
                try await first.recordSubmission(
                    jobID: job.id, attemptID: attempt, outcome: .accepted(SubmitAnswer(taskID: "late-task")),
                    state: .submitted, latency: .zero, now: Date())
                return job
            }
            #expect(try await first.state(jobID: job.id) == .pending)
            #expect(try await count(second, "SELECT COUNT(*) FROM takes WHERE task_id = 'late-task'") == 1)
            // Numbered after the job's own take, and counted as paid twice.
            #expect(try await count(second, "SELECT take FROM takes WHERE task_id = 'late-task'") == 2)
            #expect(try await second.spendReport(ReportQuery()).total.paidTwice == 1)
        }
    }

    @Test func runnersOnOneKeyShareItsPaceAndOtherKeysGoTheirOwn() async throws {
        try await withTwoRunners(jobs: 1) { first, second, _ in
            let key = APIKey("key-a")!.fingerprint
            #expect(key.count == 32 && !key.contains("key-a"))
            let a = try await first.sharedPace(forKey: key, .submissions)!
            let b = try await second.sharedPace(forKey: key, .submissions)!
            let interval = Duration.milliseconds(100)
            // Forty reservations at once from two runners: one slot each, 100 ms apart, so the
            // key's next free slot moves 4 s on (the server's clock), and the last slot comes
            // nearly that long after the first (however long the reservations took to make).
            let before: Double = try await first.value("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8")
            let slots = try await withThrowingTaskGroup(of: Double.self) { group in
                for pace in Array(repeating: a, count: 20) + Array(repeating: b, count: 20) {
                    group.addTask {
                        let wait = try await pace.reserve(interval: interval).seconds
                        return Date().timeIntervalSince1970 + wait  // when its slot comes
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }.sorted()
            }
            let next: Double = try await first.value(
                "SELECT EXTRACT(EPOCH FROM next_slot)::float8 FROM key_budgets WHERE fingerprint = \(key + ":submissions")"
            )
            // (However late the first one came: on a busy machine, a second and more.)
            #expect(next - before >= 4.0 && next - slots.last! < 1, "\(next - before)")
            #expect(slots.last! - slots.first! > 3.5, "\(slots.map { $0 - before })")
            // Another key, and the looks of this one, owe nothing to those forty.
            let other = try await second.sharedPace(forKey: APIKey("key-b")!.fingerprint, .submissions)!
            #expect(try await other.reserve(interval: interval) < .milliseconds(50))
            #expect(try await first.sharedPace(forKey: key, .looks)!.reserve(interval: interval) < .milliseconds(50))
            // A 429's pause holds every runner on the key.
            // (Less the time the two calls took: seconds, on a loaded machine.)
            let pausedAt = ContinuousClock.now
            try await b.pause(for: .seconds(30))
            let wait = try await a.reserve(interval: interval)
            #expect(wait > .seconds(29) - (ContinuousClock.now - pausedAt), "\(wait)")
            // The key itself is in no table.
            #expect(try await count(first, "SELECT COUNT(*) FROM key_budgets WHERE fingerprint LIKE '%key-%'") == 0)
        }
    }

    @Test func connectionsCutByTheServerAreMadeAgain() async throws {
        try await withTwoRunners(jobs: 2) { first, second, batchID in
            #expect(try await first.countPending(batchID: batchID) == 2)
            _ = try await second.rows(
                """
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                """)
            #expect(try await first.countPending(batchID: batchID) == 2)
            _ = try await sendAll(first, batchID: batchID)
            #expect(try await second.countPending(batchID: batchID) == 0)
        }
    }
}

/// The command line on a PostgreSQL ledger.
@Suite struct PostgresCommandTests {
    @Test func aBatchRunsOnPostgreSQLAndItsLedgerCopiesToAFile() async throws {
        var url = try await TestPostgres.shared.newDatabase()
        url.password = "s3cret"  // the test server trusts loopback; the password must still never show
        let ledger = "postgres://\(url.user):s3cret@\(url.host):\(url.port)/\(url.database)"
        let folder = try TemporaryFolder()
        let csv = try folder.writeJobs(4, prompt: "a door")
        let run = try await soundbatch(
            ["run", csv, "--sandbox", "--wait", "--download", "sounds", "--ledger", ledger], in: folder.path)
        // The built-in sandbox draws its failures from a fixed seed: none among these four.
        #expect(run.status == 0, "\(run.stderr)")
        let status = try await soundbatch(["status", "--ledger", ledger, "--json"], in: folder.path)
        let saved = try FileManager.default.contentsOfDirectory(atPath: folder.file("sounds")).count
        let batches =
            try #require(
                try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])["batches"]
            as? [[String: Any]]
        #expect(saved == 4 && (batches?.first?["states"] as? [String: Int])?["completed"] == 4, "\(status.stdout)")
        let copy = try await soundbatch(["ledger", "copy", ledger, "copy.sqlite"], in: folder.path)
        #expect(copy.status == 0 && copy.stdout.contains("copied 1 batch, 4 jobs"), "\(copy.stderr)")
        let again = try await soundbatch(["ledger", "copy", "copy.sqlite", ledger], in: folder.path)
        #expect(again.status == 74 && again.stderr.contains("already holds batches"))
        for output in [run, status, copy, again] {
            #expect(!(output.stdout + output.stderr).contains("s3cret"))
        }
        let report = try await soundbatch(["report", "--ledger", "copy.sqlite", "--format", "json"], in: folder.path)
        let total = try #require(try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any])[
            "total"]
        #expect((total as? [String: Any])?["jobs"] as? Int == 4, "\(report.stdout)")
    }
}
