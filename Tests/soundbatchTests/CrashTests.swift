import Foundation
import GRDB
import SoundbatchSandbox
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

/// Real `soundbatch` processes, killed and interrupted mid-run, against a sandbox in
/// this process: nothing lost, nothing paid twice unless resent on purpose.
@Suite(.serialized) struct CrashTests {
    let folder = try! TemporaryFolder()

    func writeJobs(_ count: Int) throws -> String {
        let rows = (1...count).map { "j\($0),crash test sound \($0)" }
        return try folder.write("b.csv", "id,prompt\n" + rows.joined(separator: "\n"))
    }

    func jobs() throws -> [Row] {
        try DatabaseQueue(path: folder.file("ledger.sqlite")).read {
            try Row.fetchAll($0, sql: "SELECT * FROM jobs ORDER BY id")
        }
    }

    func states() throws -> [String: Int] {
        Dictionary(grouping: try jobs(), by: { $0["state"] as String }).mapValues(\.count)
    }

    var environment: [String: String] { ["MUSICGPT_API_KEY": "test-key"] }

    @Test func aKilledRunResumesWithoutSendingAnyJobTwice() async throws {
        let csv = try writeJobs(40)
        let configuration = SandboxConfiguration.with {
            $0.submitsPerMinute = nil
            $0.latency = .milliseconds(150)
        }
        try await Sandbox.withRunning(configuration) { url, sandbox in
            let send = [
                "--base-url", url, "--ledger", "ledger.sqlite", "--rate", "40/s", "--concurrency", "4", "--quiet"
            ]
            let first = try Child(
                ["run", csv, "--batch", "b"] + send, in: folder, environment: environment, name: "first")
            #expect(try await eventually { await sandbox.acceptedTasks.count >= 10 })
            first.signal(SIGKILL)
            #expect(try await first.exitStatus() == SIGKILL + 128 || first.process.terminationReason == .uncaughtSignal)

            let resumed = try Child(
                ["resume", "--batch", "b"] + send, in: folder, environment: environment, name: "resume")
            let status = try await resumed.exitStatus()
            let held = try states()["in_doubt", default: 0]
            #expect(status == (held > 0 ? 2 : 0), "\(resumed.stderr)")
            #expect(held <= 4, "no more than the requests in flight can be in doubt")
            if held > 0 { #expect(resumed.stderr.contains("--resend-in-doubt")) }

            let tasks = await sandbox.acceptedTasks
            let rows = try jobs()
            #expect(Set(tasks.map(\.prompt)).count == tasks.count, "a job was paid for twice")
            #expect(rows.allSatisfy { ["submitted", "in_doubt"].contains($0["state"] as String) })
            let submitted = Dictionary(
                uniqueKeysWithValues: rows.compactMap { row in
                    (row["task_id"] as String?).map { ($0, row["prompt"] as String) }
                })
            let inDoubt = Set(rows.filter { $0["state"] == "in_doubt" }.map { $0["prompt"] as String })
            for task in tasks {
                #expect(
                    submitted[task.taskID] == task.prompt || inDoubt.contains(task.prompt), "task \(task.taskID) lost"
                )
            }

            // Resending the jobs in doubt is the user's call; it may pay for those again, and only those.
            let resend = try Child(
                ["resume", "--batch", "b", "--resend-in-doubt"] + send, in: folder, environment: environment,
                name: "resend")
            #expect(try await resend.exitStatus() == 0, "\(resend.stderr)")
            let after = await sandbox.acceptedTasks
            #expect(try states() == ["submitted": 40])
            let duplicates = after.count - Set(after.map(\.prompt)).count
            #expect(duplicates <= held)
        }
    }

    /// A new ledger's first feed is written under a rollback journal: killed in the middle,
    /// it leaves nothing behind, and the ledger takes the next feed whole, back in WAL mode.
    @Test func aFirstFeedKilledHalfwayLeavesASoundLedger() async throws {
        let csv = try writeJobs(150_000)
        let ledger = folder.file("ledger.sqlite")
        let feed = ["run", csv, "--batch", "b", "--dry-run", "--ledger", "ledger.sqlite"]
        let first = try Child(feed, in: folder, name: "first feed")
        // Killed once the feed is writing its rows: the journal is there, and the tables are
        // (a new file is made under a journal too, for a moment).
        var readOnly = Configuration()
        readOnly.readonly = true
        #expect(
            try await eventually {
                FileManager.default.fileExists(atPath: ledger + "-journal")
                    && (try? DatabaseQueue(path: ledger, configuration: readOnly).read {
                        try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM sqlite_master WHERE name = 'jobs'")
                    }) == 1
            })
        first.signal(SIGKILL)
        _ = try await first.exitStatus()
        #expect(
            try await DatabaseQueue(path: ledger).read { db in
                [
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs"),
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM batches")
                ]
            } == [0, 0])

        let again = try Child(feed, in: folder, name: "second feed")
        #expect(try await again.exitStatus() == 0, "\(again.stderr)")
        let after = try await DatabaseQueue(path: ledger).read { db in
            (
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs"),
                try String.fetchOne(db, sql: "PRAGMA journal_mode")
            )
        }
        #expect(after.0 == 150_000 && after.1 == "wal")
    }

    @Test func SIGINTLetsRequestsInFlightFinishAndSaysHowToResume() async throws {
        let csv = try writeJobs(30)
        let configuration = SandboxConfiguration.with {
            $0.submitsPerMinute = nil
            $0.latency = .milliseconds(800)
        }
        try await Sandbox.withRunning(configuration) { url, sandbox in
            let child = try Child(
                [
                    "run", csv, "--batch", "b", "--base-url", url, "--ledger", "ledger.sqlite",
                    "--rate", "20/s", "--concurrency", "4"
                ], in: folder, environment: environment)
            #expect(try await eventually { await sandbox.acceptedTasks.count >= 4 })
            child.signal(SIGINT)
            #expect(try await child.exitStatus() == 2)
            #expect(child.stderr.contains("soundbatch resume --batch b"))
            let counts = try states()
            #expect(counts["submitting"] == nil && counts["in_doubt"] == nil, "\(counts)")
            #expect(counts["pending", default: 0] > 0)
            let tasks = await sandbox.acceptedTasks
            #expect(counts["submitted"] == tasks.count, "every request in flight was answered and recorded")
        }
    }

    @Test func theKeyAppearsNowhere() async throws {
        let secret = "sk-live-\(UUID().uuidString)"
        let csv = try writeJobs(5)
        try await Sandbox.withRunning(
            SandboxConfiguration.with {
                $0.submitsPerMinute = nil
                $0.failureRate = 0.5
            }
        ) { url, _ in
            let child = try Child(
                [
                    "run", csv, "--batch", "b", "--base-url", url, "--ledger", "ledger.sqlite",
                    "--rate", "50/s", "--log-level", "trace"
                ], in: folder,
                environment: ["MUSICGPT_API_KEY": secret])
            _ = try await child.exitStatus()
            // A refused key must not be echoed either.
            let refused = try Child(
                [
                    "resume", "--batch", "b", "--base-url", url + "/nowhere", "--ledger", "ledger.sqlite",
                    "--log-level", "trace"
                ], in: folder, environment: ["MUSICGPT_API_KEY": secret], name: "refused")
            _ = try await refused.exitStatus()
            for text in [child.stdout, child.stderr, refused.stdout, refused.stderr] {
                #expect(!text.contains(secret))
            }
        }
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasPrefix("ledger") {
            let bytes = try Data(contentsOf: folder.url.appendingPathComponent(name))
            #expect(bytes.range(of: Data(secret.utf8)) == nil, "the key is in \(name)")
        }
    }

    @Test func noKeyIsAUsageErrorThatSaysHowToSetOne() async throws {
        let csv = try writeJobs(1)
        let child = try Child(["run", csv, "--ledger", "ledger.sqlite"], in: folder)
        #expect(try await child.exitStatus() == 64)
        #expect(child.stderr.contains("MUSICGPT_API_KEY") && child.stderr.contains("--sandbox"))
    }

    @Test func theMainCommandFetchesAPlayableWAVForEveryCompletedJob() async throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("jobs.example.csv").path
        let child = try Child(
            ["run", example, "--sandbox", "--wait", "--download", "sounds", "--ledger", "ledger.sqlite"],
            in: folder)
        let status = try await child.exitStatus(within: .seconds(120))
        let rows = try jobs()
        let completed = rows.filter { $0["state"] == "completed" }
        #expect(completed.count + rows.filter { $0["state"] == "generation_failed" }.count == 12)
        #expect(status == (completed.count == 12 ? 0 : 1), "\(child.stderr)")
        for row in completed {
            let path = try #require(row["download_path"] as String?)
            #expect(path.hasPrefix(folder.file("sounds/")))
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(
                data.prefix(4) == Data("RIFF".utf8) && data[8..<12] == Data("WAVE".utf8)
                    && data[12..<16] == Data("fmt ".utf8))
        }
        #expect(child.stdout.contains("audio saved \(completed.count)"))
        // Tracking runs while submitting goes on: the first look comes before the last prompt is sent.
        let firstLook = try await DatabaseQueue(path: folder.file("ledger.sqlite")).read {
            try String.fetchOne($0, sql: "SELECT MIN(started_at) FROM attempts WHERE kind = 'look'")
        }
        let lastSent = rows.compactMap { $0["submitted_at"] as String? }.max()
        #expect(firstLook != nil && lastSent != nil && firstLook! < lastSent!)
    }

    @Test func aKeyFileMustBeARegularFileAndPrivate() async throws {
        let csv = try writeJobs(2)
        let folderAsKey = try Child(
            ["run", csv, "--ledger", "ledger.sqlite", "--api-key-file", folder.path], in: folder, name: "dir")
        #expect(try await folderAsKey.exitStatus() == 64)
        #expect(folderAsKey.stderr.contains("not a regular file"))
        let secret = "sk-file-\(UUID().uuidString)"
        let keyFile = try folder.write("key.txt", secret + "\n")
        chmod(keyFile, 0o644)
        try await Sandbox.withRunning(
            .with {
                $0.submitsPerMinute = nil
                $0.apiKeys = [secret]
            }
        ) { url, sandbox in
            let child = try Child(
                [
                    "run", csv, "--ledger", "ledger.sqlite", "--base-url", url, "--rate", "20/s",
                    "--api-key-file", keyFile, "--log-level", "trace"
                ], in: folder)
            #expect(try await child.exitStatus() == 0, "\(child.stderr)")
            #expect(child.stderr.contains("can be read by other users; chmod 600 it"))
            #expect(!child.stderr.contains(secret) && !child.stdout.contains(secret))
            #expect(await sandbox.acceptedTasks.count == 2)  // the key was read and used
        }
    }

    @Test func theWebhookCommandRecordsACallbackThenStopsCleanlyOnSIGINT() async throws {
        try await Sandbox.withRunning(
            .with {
                $0.generationTime = .milliseconds(150)
                $0.eta = .true
                $0.generationFailureRate = 0
            }
        ) {
            url, _ in
            // One job, submitted to the sandbox by `run`, so the batch is bound to it.
            let run = try Child(
                ["run", try writeJobs(1), "--batch", "b", "--base-url", url, "--ledger", "ledger.sqlite"], in: folder,
                environment: environment, name: "run")
            #expect(try await run.exitStatus() == 0, "\(run.stderr)")
            let taskID = try #require(try jobs().first?["task_id"] as String?)
            try await Task.sleep(for: .milliseconds(500))  // the task is done at the sandbox

            let child = try Child(
                ["webhook", "--listen", "127.0.0.1:0", "--ledger", "ledger.sqlite"], in: folder,
                environment: environment)
            // The URL is on standard output (a file here) while the server runs: it must not wait in a buffer.
            #expect(try await eventually { child.stdout.contains("/hook") }, "\(child.stderr)")
            let hook = try #require(
                child.stdout.split(separator: " ").first { $0.hasPrefix("http://") }.map(String.init))
            let forged =
                #"{"task_id":"\#(taskID)","status":"COMPLETED","audio_url":"http://evil/1.wav","conversion_cost":999}"#
            #expect(try await postJSON(forged, to: hook) == 200)
            let recorded = try #require(try jobs().first)
            #expect(recorded["state"] == "completed")
            #expect(
                recorded["audio_url"] as String? == "\(url)/audio/\(taskID).wav",
                "the service's URL, not the callback's")
            #expect(recorded["conversion_cost"] as Double? != 999)

            child.signal(SIGINT)
            #expect(try await child.exitStatus() == 0, "\(child.stderr)")
            #expect(child.stderr.contains("stopping"))
        }
    }

    @Test func aCallbackTheServiceCannotConfirmChangesNothing() async throws {
        let ledger = try SQLiteLedger(path: folder.file("ledger.sqlite"))
        _ = try await ledger.ingest(CSVReader(path: try writeJobs(1)), batch: "b", skipInvalid: false)
        try await ledger.database.write {
            try $0.execute(sql: "UPDATE jobs SET state = 'submitted', task_id = 'task-1'")
        }
        let stopped = try await Sandbox.withRunning { url, _ in url }  // nothing listens there any more
        var bound = BatchSettings()
        bound.service = .api(baseURL: stopped)
        try await ledger.recordSettings(bound, ofBatch: try await ledger.batchID(named: "b"))
        let child = try Child(
            ["webhook", "--listen", "127.0.0.1:0", "--ledger", "ledger.sqlite"], in: folder, environment: environment)
        #expect(try await eventually { child.stdout.contains("/hook") }, "\(child.stderr)")
        let hook = try #require(child.stdout.split(separator: " ").first { $0.hasPrefix("http://") }.map(String.init))
        let completed = #"{"task_id":"task-1","status":"COMPLETED","audio_url":"http://x/1.wav","conversion_cost":2}"#
        #expect(try await postJSON(completed, to: hook, timeout: 20) == 503)  // after the look times out
        child.signal(SIGINT)
        #expect(try await child.exitStatus() == 0, "\(child.stderr)")
        #expect(child.stderr.contains("stopping"))
        let job = try #require(try jobs().first)
        #expect(job["state"] == "submitted" && job["audio_url"] as String? == nil, "nothing the callback said was kept")
        #expect(child.stderr.contains("could not confirm task task-1 with the service"))
    }

    @Test func aTakenPortIsAUsageErrorThatSaysSo() async throws {
        try await Sandbox.withRunning { url, _ in
            let port = String(url.split(separator: ":").last ?? "")
            let child = try Child(["sandbox", "--port", port], in: folder)
            #expect(try await child.exitStatus() == 64)
            #expect(
                child.stderr.contains(
                    "could not listen on 127.0.0.1:\(port): Address already in use; choose another port"),
                "\(child.stderr)")
        }
    }
}
