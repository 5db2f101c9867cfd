import Foundation
import GRDB
import Logging
import SoundbatchSandbox
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

/// The dispatcher against the sandbox over loopback, with a real ledger.
@Suite struct DispatcherTests {
    let folder = try! TemporaryFolder()

    /// A ledger holding one batch "b" of `count` jobs with unique prompts.
    func ledger(jobs count: Int, audioLength: Int? = nil, file: String = "ledger") async throws -> (SQLiteLedger, Int64)
    {
        let rows = (1...count).map { "j\($0),sound number \($0),\(audioLength.map(String.init) ?? "")" }
        let csv = try folder.write("b.csv", "id,prompt,audio_length\n" + rows.joined(separator: "\n"))
        let ledger = try SQLiteLedger(path: folder.file("\(file).sqlite"))
        _ = try await ledger.ingest(CSVReader(path: csv), batch: "b", skipInvalid: false)
        let id = try await ledger.database.read {
            try Int64.fetchOne($0, sql: "SELECT id FROM batches WHERE name = 'b'")!
        }
        return (ledger, id)
    }

    func fast(_ tweak: (inout DispatchSettings) -> Void = { _ in }) -> DispatchSettings {
        var settings = DispatchSettings()
        settings.rate = Rate("1000/s")!
        settings.concurrency = 8
        settings.backoff = Backoff(base: .milliseconds(10), cap: .milliseconds(50))
        tweak(&settings)
        return settings
    }

    func unlimitedSandbox(_ tweak: (inout SandboxConfiguration) -> Void = { _ in }) -> SandboxConfiguration {
        var configuration = SandboxConfiguration()
        configuration.submitsPerMinute = nil
        tweak(&configuration)
        return configuration
    }

    func dispatch(
        _ ledger: SQLiteLedger, batchID: Int64, sandbox configuration: SandboxConfiguration,
        settings: DispatchSettings, key: String = "k"
    ) async throws -> (DispatchResult, [SandboxTask], [String: Int]) {
        try await Sandbox.withRunning(configuration) { url, sandbox in
            let client = MusicGPTClient(
                baseURL: url, key: APIKey(key)!, timeout: .seconds(5), connections: settings.concurrency)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let dispatcher = Dispatcher(
                ledger: ledger, submitter: client, settings: settings, clock: ContinuousClock(),
                stop: StopSignal(), logger: logger)
            let result = try await dispatcher.run(batchID: batchID)
            await client.shutdown()
            return (result, await sandbox.acceptedTasks, await sandbox.answers)
        }
    }

    func jobRows(_ ledger: SQLiteLedger) throws -> [Row] {
        try ledger.database.read { try Row.fetchAll($0, sql: "SELECT * FROM jobs ORDER BY id") }
    }

    @Test func everyJobIsSubmittedOnceAndTheLedgerMatchesTheSandbox() async throws {
        let (ledger, batchID) = try await ledger(jobs: 40, audioLength: 12)
        let (result, tasks, _) = try await dispatch(
            ledger, batchID: batchID, sandbox: unlimitedSandbox(), settings: fast())
        #expect(result.counters.submitted == 40)
        #expect(result.stopReason == nil)
        let rows = try jobRows(ledger)
        #expect(rows.allSatisfy { $0["state"] == "submitted" })
        #expect(tasks.count == 40)
        let byTask = Dictionary(uniqueKeysWithValues: tasks.map { ($0.taskID, $0) })
        for row in rows {
            let task = try #require(byTask[row["task_id"] as String])
            #expect(task.prompt == row["prompt"])
            #expect(task.conversionID == row["conversion_id"])
            #expect(task.creditEstimate == row["credit_estimate"])
            #expect(row["submitted_at"] as String? != nil)
            #expect(row["attempt_count"] == 1)
        }
        let attempts = try await ledger.database.read {
            try Int.fetchOne(
                $0, sql: "SELECT COUNT(*) FROM attempts WHERE http_status = 200 AND finished_at IS NOT NULL")!
        }
        #expect(attempts == 40)
        // Nothing left: a second run sends nothing.
        let (again, tasksAgain, _) = try await dispatch(
            ledger, batchID: batchID, sandbox: unlimitedSandbox(), settings: fast())
        #expect(again.counters.total == 0 && tasksAgain.isEmpty)
    }

    @Test func faultsAreRetriedOrHeldAndNothingIsPaidTwice() async throws {
        let (ledger, batchID) = try await ledger(jobs: 60)
        let sandbox = unlimitedSandbox {
            $0.failureRate = 0.3
            $0.seed = 42
        }
        let (result, tasks, answers) = try await dispatch(ledger, batchID: batchID, sandbox: sandbox, settings: fast())
        let rows = try jobRows(ledger)
        let states = Dictionary(grouping: rows, by: { $0["state"] as String }).mapValues(\.count)
        #expect(states["pending", default: 0] == 0 && states["submitting", default: 0] == 0)
        #expect(result.counters.retries > 0)
        // Every task the sandbox accepted is in the ledger: submitted, or held in doubt
        // when the connection dropped after it was taken.
        let prompts = tasks.map(\.prompt)
        #expect(Set(prompts).count == prompts.count, "a job was paid for twice")
        let submitted = Set(rows.filter { $0["state"] == "submitted" }.map { $0["task_id"] as String })
        let accepted = Set(tasks.map(\.taskID))
        #expect(submitted.isSubset(of: accepted))
        let inDoubtPrompts = Set(rows.filter { $0["state"] == "in_doubt" }.map { $0["prompt"] as String })
        for task in tasks where !submitted.contains(task.taskID) {
            #expect(inDoubtPrompts.contains(task.prompt), "task \(task.taskID) was lost")
        }
        #expect(
            answers["reset-after", default: 0] + answers["reset-before", default: 0] == states["in_doubt", default: 0])
        #expect(answers["success-false", default: 0] == states["failed", default: 0])
        let attempts = try await ledger.database.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM attempts")! }
        #expect(attempts == answers.values.reduce(0, +))
    }

    @Test func aRefusedKeyStopsAfterAtMostConcurrencyRequests() async throws {
        let (ledger, batchID) = try await ledger(jobs: 50)
        let sandbox = SandboxConfiguration.with {
            $0.submitsPerMinute = nil
            $0.apiKeys = ["right"]
            $0.latency = .milliseconds(50)
        }
        let (result, _, answers) = try await dispatch(
            ledger, batchID: batchID, sandbox: sandbox,
            settings: fast { $0.concurrency = 4 }, key: "wrong")
        guard case .keyRejected? = result.stopReason else {
            Issue.record("\(String(describing: result.stopReason))")
            return
        }
        #expect(answers["403", default: 0] >= 1 && answers["403", default: 0] <= 4)
        let rows = try jobRows(ledger)
        #expect(rows.allSatisfy { $0["state"] == "pending" })
    }

    @Test func runningOutOfCreditsStopsWithJobsPending() async throws {
        let (ledger, batchID) = try await ledger(jobs: 20)
        let sandbox = unlimitedSandbox { $0.credits = 10 }  // five jobs at 2 credits
        let (result, tasks, _) = try await dispatch(
            ledger, batchID: batchID, sandbox: sandbox, settings: fast { $0.concurrency = 1 })
        guard case .outOfCredits? = result.stopReason else {
            Issue.record("\(String(describing: result.stopReason))")
            return
        }
        #expect(tasks.count == 5)
        let rows = try jobRows(ledger)
        #expect(rows.filter { $0["state"] == "submitted" }.count == 5)
        #expect(rows.filter { $0["state"] == "pending" }.count == 15)
    }

    @Test func maxCreditsIsNeverPassed() async throws {
        let (ledger, batchID) = try await ledger(jobs: 30, audioLength: 20)  // 3 credits each
        let (result, tasks, _) = try await dispatch(
            ledger, batchID: batchID, sandbox: unlimitedSandbox(),
            settings: fast { $0.maxCredits = 20 })
        let budget = try #require(result.budget)
        #expect(tasks.count == 6)
        #expect(budget.estimated == 18 && budget.limit == 20 && budget.jobsLeft == 24)
        #expect(tasks.map(\.creditEstimate).reduce(0, +) <= 20)
    }

    @Test func rateLimitingPausesEveryoneAndEveryJobStillGoesThrough() async throws {
        let (ledger, batchID) = try await ledger(jobs: 3)
        // 50/s against one each 10 s after a burst of two: the third is refused even when a
        // loaded machine slows the client down (against 1/s, a full test run on two cores
        // sometimes sent 8 jobs 3.5 s apart, and met no 429).
        let sandbox = SandboxConfiguration.with { $0.submitsPerMinute = 6 }
        let (result, tasks, answers) = try await dispatch(
            ledger, batchID: batchID, sandbox: sandbox,
            settings: fast {
                $0.rate = Rate("50/s")!
                $0.maxAttempts = 20
            })
        #expect(result.counters.submitted == 3)
        #expect(tasks.count == 3)
        #expect(answers["429", default: 0] > 0)
        #expect(result.counters.rateLimited == answers["429", default: 0])
    }

    @Test func aStrictLimiterWithoutRetryAfterSlowsThePaceAndFailsNoJob() async throws {
        let (ledger, batchID) = try await ledger(jobs: 6)
        // The server allows 60/min and refuses anything a moment early, saying nothing of when
        // to come back; soundbatch is told 600/min and has one attempt per job. (Against
        // 300/min a loaded machine once sent too slowly to meet a 429.)
        let sandbox = SandboxConfiguration.with {
            $0.submitsPerMinute = 60
            $0.limiter = .strict
            $0.retryAfter = .none
        }
        let (result, tasks, answers) = try await dispatch(
            ledger, batchID: batchID, sandbox: sandbox,
            settings: fast {
                $0.rate = Rate("600/min")!
                $0.maxAttempts = 1
            })
        // A 429 is the run's pace, not the job's fault: every job goes through.
        #expect(result.counters.submitted == 6 && result.counters.failed == 0)
        #expect(tasks.count == 6)
        #expect(answers["429", default: 0] > 0 && result.counters.rateLimited == answers["429", default: 0])
        // The pace came down from 600/min, and the summary can say so.
        let allowed = try #require(result.counters.allowedPerMinute)
        #expect(allowed < 600)
    }

    @Test func aJobOutOfAttemptsFailsWithTheLastError() async throws {
        let (ledger, batchID) = try await ledger(jobs: 3)
        // Job 2's requests keep failing while the service answers the others.
        let sandbox = unlimitedSandbox { $0.failingPrompt = "sound number 2" }
        let (result, _, answers) = try await dispatch(
            ledger, batchID: batchID, sandbox: sandbox,
            settings: fast { $0.maxAttempts = 3 })
        #expect(result.counters.failed == 1 && result.counters.submitted == 2)
        #expect(answers["500"] == 3)
        let failed = try #require(try jobRows(ledger).first { $0["state"] == "failed" })
        #expect(failed["prompt"] == "sound number 2")
        #expect(failed["attempt_count"] == 3 && failed["last_http_status"] == 500)
        #expect((failed["last_error"] as String?)?.contains("Internal Server Error") == true)
    }

    @Test func aServiceAnswering500ToEveryJobIsAnOutageNotTheJobsFault() async throws {
        let (ledger, batchID) = try await ledger(jobs: 3)
        let sandbox = unlimitedSandbox {
            $0.failureRate = 1
            $0.failureKinds = [.serverError]
        }
        let (result, _, _) = try await dispatch(
            ledger, batchID: batchID, sandbox: sandbox,
            settings: fast {
                $0.maxAttempts = 3
                $0.outageLimit = .seconds(2)
            })
        #expect(result.counters.failed == 0)
        guard case .serviceDown? = result.stopReason else {
            Issue.record("the run did not stop for the outage: \(String(describing: result.stopReason))")
            return
        }
        #expect(try jobRows(ledger).allSatisfy { $0["state"] == "pending" })
    }

    @Test func aResentJobRefusedForGoodSaysAnEarlierRequestMayHaveMadeATask() async throws {
        let (ledger, batchID) = try await ledger(jobs: 2)
        let dropped = unlimitedSandbox {
            $0.failureRate = 1
            $0.failureKinds = [.resetAfter]
        }
        let (first, tasks, _) = try await dispatch(ledger, batchID: batchID, sandbox: dropped, settings: fast())
        #expect(first.counters.inDoubt == 2 && tasks.count == 2)
        #expect(try await ledger.requeueInDoubt(batchID: batchID).resent == 2)
        let refusing = unlimitedSandbox {
            $0.failureRate = 1
            $0.failureKinds = [.successFalse]
        }
        let (second, _, _) = try await dispatch(ledger, batchID: batchID, sandbox: refusing, settings: fast())
        #expect(second.counters.failed == 2)
        #expect(
            try jobRows(ledger).allSatisfy {
                ($0["last_error"] as String?)?.hasSuffix(LedgerNote.unansweredBefore) == true
            })

        // A job refused at its only request says nothing of the kind.
        let (fresh, freshID) = try await self.ledger(jobs: 1, file: "fresh")
        _ = try await dispatch(fresh, batchID: freshID, sandbox: refusing, settings: fast())
        #expect(
            try jobRows(fresh).allSatisfy {
                $0["state"] == "failed" && ($0["last_error"] as String?)?.contains("earlier request") == false
            })
    }

    @Test func aTwoHundredWithoutATaskCountsAsAnEarlierRequestInDoubt() async throws {
        let (ledger, batchID) = try await ledger(jobs: 1)
        let first = try await ledger.markSubmitting(jobID: 1)
        try await ledger.recordSubmission(
            jobID: 1, attemptID: first,
            outcome: .noAnswer(status: 200, error: "HTTP 200 with no task_id in the answer"),
            state: .inDoubt, latency: .zero)
        #expect(try await ledger.requeueInDoubt(batchID: batchID).resent == 1)
        let second = try await ledger.markSubmitting(jobID: 1)
        try await ledger.recordSubmission(
            jobID: 1, attemptID: second, outcome: .rejected(status: 422, error: "bad prompt"),
            state: .failed, latency: .zero)
        #expect(try jobRows(ledger)[0]["last_error"] == "bad prompt" + LedgerNote.unansweredBefore)
    }

    @Test func whatCameOfEachRequestIsAColumnNotAMessage() async throws {
        let (ledger, batchID) = try await ledger(jobs: 3)
        let (one, two, three): (Int64, Int64, Int64) = (1, 2, 3)
        let first = try await ledger.markSubmitting(jobID: one)
        try await ledger.recordSubmission(
            jobID: one, attemptID: first, outcome: .noAnswer(status: nil, error: "reset"),
            state: .inDoubt, latency: .zero)
        let accepted = try await ledger.markSubmitting(jobID: two)
        try await ledger.recordSubmission(
            jobID: two, attemptID: accepted, outcome: .accepted(SubmitAnswer(taskID: "t2")),
            state: .submitted, latency: .zero)
        let busy = try await ledger.markSubmitting(jobID: three)
        try await ledger.recordSubmission(
            jobID: three, attemptID: busy,
            outcome: .retryable(status: 503, error: "busy", retryAfter: nil),
            state: .pending, latency: .zero)
        _ = try await ledger.markSubmitting(jobID: three)
        #expect(try await ledger.holdInterruptedSubmissions() == 1)
        let outcomes = try await ledger.database.read {
            try String.fetchAll($0, sql: "SELECT outcome FROM attempts ORDER BY id")
        }
        #expect(outcomes == ["no_answer", "accepted", "retryable", "interrupted"])
        let inDoubt = try await ledger.database.read {
            try Bool.fetchAll($0, sql: "SELECT request_in_doubt FROM jobs ORDER BY id")
        }
        #expect(inDoubt == [true, false, true])
        #expect(try await ledger.requeueInDoubt(batchID: batchID).resent == 2)
    }

    @Test func interruptedSubmissionsAreHeldAsAmbiguousAndResentOnlyOnRequest() async throws {
        let (ledger, batchID) = try await ledger(jobs: 3)
        try await ledger.database.write {
            try $0.execute(sql: "UPDATE jobs SET state = 'submitting' WHERE row_key = 'j2'")
        }
        #expect(try await ledger.holdInterruptedSubmissions() == 1)
        let (first, tasks, _) = try await dispatch(
            ledger, batchID: batchID, sandbox: unlimitedSandbox(), settings: fast())
        #expect(first.counters.submitted == 2)
        #expect(!tasks.map(\.prompt).contains("sound number 2"))
        #expect(try await ledger.requeueInDoubt(batchID: batchID).resent == 1)
        let (second, resent, _) = try await dispatch(
            ledger, batchID: batchID, sandbox: unlimitedSandbox(), settings: fast())
        #expect(second.counters.submitted == 1)
        #expect(resent.map(\.prompt) == ["sound number 2"])
    }

    @Test func theDefaultWebhookFillsRowsWithoutOne() async throws {
        let (ledger, batchID) = try await ledger(jobs: 2)
        let (_, tasks, _) = try await dispatch(
            ledger, batchID: batchID, sandbox: unlimitedSandbox(),
            settings: fast { $0.webhookURL = "https://example.com/hook" })
        #expect(tasks.map(\.webhookURL) == ["https://example.com/hook", "https://example.com/hook"])
        // The row's own column stays the row's: a later run's --webhook-url (or the sandbox's
        // own receiver, on another port) is what its next request carries.
        #expect(try jobRows(ledger).allSatisfy { $0["webhook_url"] as String? == nil })
    }

    @Test func onlyOneProcessMaySendFromALedger() async throws {
        let (ledger, _) = try await ledger(jobs: 1)
        let lock = try ledger.lockForSending()
        #expect { try ledger.lockForSending() } throws: { "\($0)".contains("process \(getpid())") }
        lock.release()
        // A child process that another test is starting can hold a copy of the lock's file
        // between its fork and its exec; give it a moment.
        var again: SendingLock?
        for _ in 0..<100 where again == nil {
            again = try? ledger.lockForSending()
            if again == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(again != nil)
    }
}
