import Foundation
import GRDB
import Logging
import SoundbatchSandbox
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

/// `soundbatch retry`: new takes of finished jobs, with nothing of the earlier ones forgotten.
@Suite(.serialized) struct RetryTests {
    let folder = try! TemporaryFolder()

    func sandbox(generationFails: Bool) -> SandboxConfiguration {
        .with {
            $0.submitsPerMinute = nil
            $0.generationTime = .milliseconds(200)
            $0.eta = .true
            $0.generationFailureRate = generationFails ? 1 : 0
        }
    }

    func taskIDs() throws -> (jobs: [String], takes: [String]) {
        try DatabaseQueue(path: folder.file("ledger.sqlite")).read { db in
            (
                try String.fetchAll(db, sql: "SELECT task_id FROM jobs WHERE task_id IS NOT NULL ORDER BY id"),
                try String.fetchAll(db, sql: "SELECT task_id FROM takes WHERE task_id IS NOT NULL ORDER BY id")
            )
        }
    }

    @Test func retryingGenerationFailuresKeepsEveryEarlierTaskAndCountsItsCost() async throws {
        let csv = try folder.writeJobs(3, prompt: "retry sound")
        try await Sandbox.withRunning(sandbox(generationFails: true)) { url, sandbox in
            let first = try Child(
                ["run", csv, "--batch", "b", "--base-url", url, "--wait", "--ledger", "ledger.sqlite"], in: folder,
                environment: ["MUSICGPT_API_KEY": "k"])
            #expect(try await first.exitStatus() == 1, "\(first.stderr)")
            #expect(try folder.jobStates() == ["generation_failed": 3])

            // Without a terminal it asks for --yes, and sends nothing.
            let unasked = try Child(["retry", "--batch", "b", "--ledger", "ledger.sqlite"], in: folder, name: "unasked")
            #expect(try await unasked.exitStatus() == 64)
            #expect(unasked.stdout.contains("3 jobs to send again (3 generation_failed)"), "\(unasked.stdout)")
            #expect(unasked.stderr.contains("--yes"))
            #expect(try folder.jobStates() == ["generation_failed": 3])

            let retried = try Child(
                ["retry", "--batch", "b", "--yes", "--ledger", "ledger.sqlite"], in: folder,
                environment: ["MUSICGPT_API_KEY": "k"], name: "retry")
            #expect(try await retried.exitStatus() == 1, "\(retried.stderr)")
            let (jobs, takes) = try taskIDs()
            let accepted = await sandbox.acceptedTasks.map(\.taskID)
            #expect(accepted.count == 6 && takes.count == 3 && jobs.count == 3)
            #expect(Set(jobs + takes) == Set(accepted), "every task the service made is in the ledger")

            let ledger = try SQLiteLedger(path: folder.file("ledger.sqlite"), create: false)
            let total = try await ledger.spendReport(ReportQuery()).total
            let estimated = await sandbox.acceptedTasks.map(\.creditEstimate).reduce(0, +)
            #expect(abs(total.creditsEstimated - estimated) < 1e-9 && total.earlierTakes == 3)
            let status = try #require(try await ledger.status(batch: "b").first)
            #expect(abs(status.creditEstimateTotal - estimated) < 1e-9, "status counts earlier takes too")
        }
    }

    @Test func aNewTakeOfACompletedSoundKeepsTheEarlierFile() async throws {
        let csv = try folder.writeJobs(2, prompt: "take sound")
        try await Sandbox.withRunning(sandbox(generationFails: false)) { url, _ in
            let first = try Child(
                [
                    "run", csv, "--batch", "b", "--base-url", url, "--wait", "--download", "sounds", "--ledger",
                    "ledger.sqlite"
                ], in: folder, environment: ["MUSICGPT_API_KEY": "k"])
            #expect(try await first.exitStatus() == 0, "\(first.stderr)")
            let again = try Child(
                ["retry", "--batch", "b", "--job", "j1", "--yes", "--ledger", "ledger.sqlite"], in: folder,
                environment: ["MUSICGPT_API_KEY": "k"], name: "again")
            #expect(try await again.exitStatus() == 0, "\(again.stderr)")
            let files = Set(try FileManager.default.contentsOfDirectory(atPath: folder.file("sounds")))
            // A saved file's name never changes: the new take has a name of its own.
            #expect(files == ["j1.wav", "j1.take2.wav", "j2.wav"])
            let take = try SQLiteLedger(path: folder.file("ledger.sqlite"), create: false).database.read {
                try Row.fetchOne($0, sql: "SELECT state, download_path FROM takes")!
            }
            #expect(take["state"] == "completed" && (take["download_path"] as String).hasSuffix("sounds/j1.wav"))
            #expect(try folder.jobStates() == ["completed": 2])
        }
    }

    @Test func aRetryTakesWhatARetryCanFixUnlessTold() async throws {
        let ledger = try SQLiteLedger(path: folder.file("ledger.sqlite"))
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("b.csv", "id,prompt\na,one\nb,two\nc,three\nd,four\n")), batch: "b",
            skipInvalid: false)
        try await ledger.database.write { db in
            try db.execute(sql: "UPDATE jobs SET state = 'failed', last_http_status = 422 WHERE row_key = 'a'")
            try db.execute(sql: "UPDATE jobs SET state = 'failed', last_http_status = 503 WHERE row_key = 'b'")
            try db.execute(sql: "UPDATE jobs SET state = 'generation_failed', credit_estimate = 2 WHERE row_key = 'c'")
            try db.execute(sql: "UPDATE jobs SET state = 'completed', credit_estimate = 3 WHERE row_key = 'd'")
        }
        var logger = Logger(label: "t")
        logger.logLevel = .critical
        let run = BatchRun(ledger: ledger, batch: "b", stop: StopSignal(), logger: logger)
        let plan = try await run.planRetry(states: nil, rows: [])
        #expect(plan.jobs.map(\.rowKey) == ["b", "c"] && plan.likelyToFailAgain.isEmpty)
        #expect(plan.forecast == 5)  // c at its own 2, b at the batch's largest, 3
        let failed = try await run.planRetry(states: [.failed], rows: [])
        #expect(failed.jobs.map(\.rowKey) == ["a", "b"] && failed.likelyToFailAgain.map(\.rowKey) == ["a"])
        let named = try await run.planRetry(states: nil, rows: ["d", "3", "nope"])
        #expect(named.jobs.map(\.rowKey) == ["b", "d"] && named.unknownRows == ["nope"])  // line 3 is row b
    }
}
