import Foundation
import Logging
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite
@testable import soundbatch

/// The `soundbatch` command as scripts see it: real child processes, exit codes, output.
/// One child process at a time: on a two-core machine, a suite's children all at once starve the
/// tests of pace and time that run beside them.
@Suite(.serialized) struct CommandTests {
    let folder = try! TemporaryFolder()

    var exampleCSV: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("jobs.example.csv").path
    }

    @Test func dryRunRecordsTheExampleAndStatusShowsIt() async throws {
        let first = try await soundbatch(["run", exampleCSV, "--dry-run"], in: folder.path)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("batch \"jobs.example\": 12 new, 0 already in the ledger"))
        #expect(FileManager.default.fileExists(atPath: folder.file("soundbatch.sqlite")))

        let again = try await soundbatch(["run", exampleCSV, "--dry-run"], in: folder.path)
        #expect(again.stdout.contains("0 new, 12 already in the ledger"))

        let status = try await soundbatch(["status"], in: folder.path)
        #expect(status.status == 0)
        #expect(status.stdout.contains("jobs.example: 12 jobs"))
        #expect(status.stdout.contains("pending 12"))
        #expect(status.stdout.contains("next: soundbatch resume --batch jobs.example"))

        let json = try await soundbatch(["status", "--json"], in: folder.path)
        let decoded = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let batches = try #require(decoded?["batches"] as? [[String: Any]])
        #expect(batches.count == 1)
        #expect(batches[0]["batch"] as? String == "jobs.example")
        #expect(batches[0]["jobs"] as? Int == 12)
        #expect((batches[0]["states"] as? [String: Int])?["pending"] == 12)
        #expect((batches[0]["states"] as? [String: Int])?["in_doubt"] == 0)
        #expect(batches[0]["credits_estimated"] as? Double == 0)
        #expect(batches[0]["credits_charged"] as? Double == 0)
    }

    /// A job in doubt whose callback may still come is held; `resume --resend-in-doubt` says
    /// when to run it again, never the very command just run with nothing more.
    @Test func resendingInsideTheDoubtWindowSaysWhenToRunItAgain() async throws {
        let csv = try folder.write("doubt.csv", "id,prompt\ndoor,a door\n")
        let ledgerPath = folder.file("doubt.sqlite")
        try await soundbatch(["run", csv, "--dry-run", "--batch", "d", "--ledger", ledgerPath], in: folder.path)
        let ledger = try SQLiteLedger(path: ledgerPath)
        let batchID = try await ledger.batchID(named: "d")
        try await ledger.withSending(batch: "d") { _ in
            let job = try await ledger.pendingJobs(batchID: batchID, afterID: 0, limit: 1)[0].id
            let attempt = try await ledger.markSubmitting(jobID: job, callbackToken: CallbackToken.make(), now: Date())
            try await ledger.recordSubmission(
                jobID: job, attemptID: attempt, outcome: .noAnswer(status: nil, error: "no answer"), state: .inDoubt,
                latency: .seconds(60), now: Date())
        }
        var settings = BatchSettings()
        settings.service = .sandbox(port: 0, callbackPort: nil)
        try await ledger.recordSettings(settings, ofBatch: batchID)
        let resumed = try await soundbatch(
            ["resume", "--batch", "d", "--resend-in-doubt", "--doubt-window", "10m", "--quiet", "--ledger", ledgerPath],
            in: folder.path)
        #expect(resumed.status == 2, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("1 job is in doubt, held for the callbacks that may still settle them until "))
        #expect(resumed.stderr.contains("after then, the same command sends those still in doubt again"))
    }

    @Test func ledgerComesFromTheEnvironmentOrTheOption() async throws {
        try await soundbatch(
            ["run", exampleCSV, "--dry-run", "--batch", "env"], in: folder.path,
            environment: ["SOUNDBATCH_LEDGER": folder.file("from-env.sqlite")])
        try await soundbatch(["run", exampleCSV, "--dry-run", "--ledger", "opt.sqlite"], in: folder.path)
        #expect(FileManager.default.fileExists(atPath: folder.file("from-env.sqlite")))
        #expect(FileManager.default.fileExists(atPath: folder.file("opt.sqlite")))
        #expect(!FileManager.default.fileExists(atPath: folder.file("soundbatch.sqlite")))
        let status = try await soundbatch(
            ["status", "--batch", "env"], in: folder.path,
            environment: ["SOUNDBATCH_LEDGER": folder.file("from-env.sqlite")])
        #expect(status.stdout.contains("env: 12 jobs"))
    }

    @Test func invalidRowsExit65WithFileAndLineAndRecordNothing() async throws {
        let csv = try folder.write("bad.csv", "id,prompt,audio_length\na,fine,5\nb,,5\nc,ok,700\n")
        let result = try await soundbatch(["run", csv, "--dry-run"], in: folder.path)
        #expect(result.status == 65)
        #expect(result.stderr.contains("bad.csv:3: the prompt is empty"))
        #expect(result.stderr.contains("bad.csv:4: audio_length \"700\""))
        #expect(result.stderr.contains("nothing was recorded"))
        // The ledger made for the feed is not left behind, empty.
        #expect(!FileManager.default.fileExists(atPath: folder.file("soundbatch.sqlite")))
    }

    @Test func skipInvalidRecordsTheRestAndExits1() async throws {
        let csv = try folder.write("bad.csv", "id,prompt\na,fine\nb,\n")
        let result = try await soundbatch(["run", csv, "--dry-run", "--skip-invalid"], in: folder.path)
        #expect(result.status == 1)
        #expect(result.stdout.contains("2 new, 0 already in the ledger (1 of the new ones invalid, set aside)"))
        #expect(try await soundbatch(["status"], in: folder.path).stdout.contains("pending 1, invalid 1"))
    }

    @Test func pathProblemsExit64() async throws {
        let missing = try await soundbatch(["run", "nope.csv", "--dry-run"], in: folder.path)
        #expect(missing.status == 64)
        #expect(missing.stderr.contains("cannot open nope.csv"))
        let directory = try await soundbatch(["run", folder.path, "--dry-run"], in: folder.path)
        #expect(directory.status == 64)
        #expect(directory.stderr.contains("directory"))
        let noLedger = try await soundbatch(["status"], in: folder.path)
        #expect(noLedger.status == 64)
        #expect(noLedger.stderr.contains("there is no ledger at soundbatch.sqlite"))
        #expect(!FileManager.default.fileExists(atPath: folder.file("soundbatch.sqlite")))
        try await soundbatch(["run", exampleCSV, "--dry-run"], in: folder.path)
        let unknownBatch = try await soundbatch(["status", "--batch", "nothing"], in: folder.path)
        #expect(unknownBatch.status == 64)
        #expect(unknownBatch.stderr.contains("no batch named \"nothing\""))
        let badOption = try await soundbatch(["run", exampleCSV, "--dry-run", "--batch", " "], in: folder.path)
        #expect(badOption.status == 64)
        let badPort = try await soundbatch(["sandbox", "--port", "99999"], in: folder.path)
        #expect(badPort.status == 64)
        #expect(badPort.stderr.contains("--port must be 0 to 65535"))
    }

    @Test func anUnusableLedgerExits74() async throws {
        let garbage = try folder.write("garbage.sqlite", String(repeating: "x", count: 4096))
        let result = try await soundbatch(["status", "--ledger", garbage], in: folder.path)
        #expect(result.status == 74)
        #expect(result.stderr.contains("cannot open the ledger"))
    }

    @Test func reportWritesFilesAtomicallyAndRefusesUnknownBatches() async throws {
        try await soundbatch(["run", exampleCSV, "--dry-run"], in: folder.path)
        let csv = try await soundbatch(["report"], in: folder.path)
        #expect(csv.status == 0)
        #expect(csv.stdout.hasPrefix("batch,jobs,"))  // not a terminal: csv
        let html = try await soundbatch(["report", "--format", "html", "--output", "spend.html"], in: folder.path)
        #expect(html.status == 0 && html.stdout.isEmpty)
        let page = try String(contentsOfFile: folder.file("spend.html"), encoding: .utf8)
        #expect(page.hasPrefix("<!DOCTYPE html>") && page.hasSuffix("</html>\n"))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".tmp") }.isEmpty)
        let jobs = try await soundbatch(
            ["report", "--jobs", "--format", "csv", "--batch", "jobs.example"], in: folder.path)
        #expect(jobs.stdout.split(separator: "\r\n").count == 13)
        #expect(
            jobs.stdout.split(separator: "\r\n").first?.hasSuffix(
                ",last_error,reason,findings,loudness_lufs,true_peak_dbtp,column:scene") == true)
        let unknown = try await soundbatch(["report", "--batch", "nope"], in: folder.path)
        #expect(unknown.status == 64 && unknown.stderr.contains("no batch named \"nope\""))
        let badDate = try await soundbatch(["report", "--since", "yesterday"], in: folder.path)
        #expect(badDate.status == 64)
        let htmlJobs = try await soundbatch(["report", "--jobs", "--format", "html"], in: folder.path)
        #expect(htmlJobs.status == 64)
    }

    @Test func theSmallThingsACommandLineToolIsExpectedToGetRight() async throws {
        let version = try await soundbatch(["--version"], in: folder.path)
        #expect(version.status == 0 && version.stdout.trimmed == Soundbatch.version)
        let bogus = try await soundbatch(["help", "bogus"], in: folder.path)
        #expect(bogus.status == 64 && bogus.stderr.contains("no command named \"bogus\""))
        for command in ["run", "resume", "retry", "track", "status", "report", "webhook", "sandbox"] {
            let help = try await soundbatch(["help", command], in: folder.path)
            #expect(help.status == 0 && help.stdout.contains("Examples:"), "\(command)")
        }
        try FileManager.default.createDirectory(atPath: folder.file("ledgers"), withIntermediateDirectories: true)
        let asFolder = try await soundbatch(["status", "--ledger", "ledgers"], in: folder.path)
        #expect(asFolder.stderr.contains("is a folder") && !asFolder.stderr.contains("I/O"), "\(asFolder.stderr)")
        // --quiet keeps the summary; the sending lock goes with the run; counts of one read as one.
        let csv = try folder.write("one.csv", "prompt\nhum\n")
        let quiet = try await soundbatch(["run", csv, "--sandbox", "--quiet"], in: folder.path)
        #expect(quiet.stdout.contains("one: this run submitted 1"), "\(quiet.stdout)")
        #expect(!FileManager.default.fileExists(atPath: folder.file("soundbatch.sqlite.lock")))
        #expect(quiet.stdout.contains("(0 answers 429, 0 retries)"))
        #expect(counted(1, "retry", "retries") == "1 retry" && counted(1_000, "job", "jobs") == "1,000 jobs")
        let status = try await soundbatch(["status"], in: folder.path)
        #expect(status.stdout.contains("one: 1 job, "), "\(status.stdout)")
        // Completions come from the tool itself, as the README says.
        for shell in ["bash", "zsh", "fish"] {
            let script = try await soundbatch(["--generate-completion-script", shell], in: folder.path)
            #expect(script.status == 0 && script.stdout.contains("soundbatch"), "\(shell)")
        }
    }

    @Test func statusJSONGivesCreditsInCentsUnderTheReportsNames() throws {
        var batch = BatchStatus(name: "b")
        batch.totals.creditsEstimated = 0.1 + 0.2 + 21.73  // 22.029999999999998
        batch.totals.creditsCharged = 22.029999999999994
        let json = String(decoding: try JSONEncoder().encode(batch), as: UTF8.self)
        #expect(json.contains("\"credits_estimated\":22.03") && json.contains("\"credits_charged\":22.03"), "\(json)")
        #expect(json.contains("\"batch\":\"b\""))
    }

    @Test func onATerminalTheTotalsFitAndSpeakInWords() async throws {
        try await soundbatch(["run", exampleCSV, "--dry-run"], in: folder.path)
        let table = try await soundbatch(["report", "--format", "table"], in: folder.path)
        let lines = table.stdout.split(separator: "\n")
        #expect(lines.allSatisfy { $0.count <= 100 }, "\(table.stdout)")
        #expect(lines[0].contains("credits charged") && !lines[0].contains("_"))
        let wide = try await soundbatch(["report", "--format", "table", "--wide"], in: folder.path)
        #expect(wide.stdout.contains("average per second") && wide.stdout.contains("first submitted"))
    }

    @Test func logLinesForPeopleForFilesAndForMachines() throws {
        let time = Date(timeIntervalSince1970: 1_790_000_000)
        func line(_ level: Logger.Level, _ format: LogFormat, forPeople: Bool) -> String {
            LogOutput.line(level: level, message: "hi", metadata: [:], format: format, forPeople: forPeople, at: time)
        }
        #expect(line(.info, .text, forPeople: true) == "hi")
        #expect(line(.warning, .text, forPeople: true) == "\u{1B}[33mwarning:\u{1B}[0m hi")
        #expect(line(.info, .text, forPeople: false) == "2026-09-21T14:13:20.000Z info hi")
        #expect(
            line(.info, .json, forPeople: true) == #"{"level":"info","message":"hi","time":"2026-09-21T14:13:20.000Z"}"#
        )
    }

    @Test func aRunLogsTimestampedLinesToAFileAndJSONWhenAsked() async throws {
        let text = try await soundbatch(["run", exampleCSV, "--sandbox", "--max-credits", "3"], in: folder.path)
        #expect(text.status == 2)
        let first = try #require(text.stderr.split(separator: "\n").first)
        #expect(first.hasPrefix("20") && first.contains(" info sandbox listening at"), "\(text.stderr)")
        let json = try await soundbatch(
            ["resume", "--batch", "jobs.example", "--max-credits", "6", "--log-format", "json"], in: folder.path)
        let lines = json.stderr.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(!lines.isEmpty, "\(json.stderr)")
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(object?["level"] != nil && object?["message"] != nil && object?["time"] != nil)
        }
    }

    @Test func pendingJobsAreForecastFromTheBatchsEstimates() async throws {
        let dry = try await soundbatch(["run", exampleCSV, "--dry-run"], in: folder.path)
        #expect(dry.stdout.contains("12 pending: their cost is unknown until the service's first answer"))
        let partial = try await soundbatch(["run", exampleCSV, "--sandbox", "--max-credits", "3"], in: folder.path)
        #expect(partial.status == 2)
        let status = try await soundbatch(["status"], in: folder.path)
        #expect(status.stdout.contains(" pending: about "), "\(status.stdout)")
        #expect(status.stdout.contains("at the average estimate so far"))
    }

    @Test func theProgressLineTellsTheWholeRunAndWhenTheServiceIsOut() {
        var sending = DispatchCounters()
        sending.total = 10
        sending.submitted = 4
        // Four sent in 45 s: 4/min.
        sending.sent = 4
        sending.firstSentAt = Date(timeIntervalSince1970: 1_790_000_000)
        sending.lastSentAt = sending.firstSentAt!.addingTimeInterval(45)
        let now = sending.lastSentAt!.addingTimeInterval(5)
        var progress = RunProgress(sending: sending, likelyEnd: now.addingTimeInterval(90))
        func line(width: Int = .max) -> String {
            ProgressReporter.fit(ProgressReporter.describe(progress, now: now), width: width)
        }
        #expect(line() == "4/10 sent · 4.0/min · 0.00 credits est. · ~1m30s left")
        var following = TrackCounters()
        following.followed = 4
        following.completed = 2
        progress.following = following
        progress.saved = 2
        progress.likelyEnd = now.addingTimeInterval(115)
        #expect(line() == "4/10 sent · 4.0/min · 0.00 credits est. · 2 generating · 2 done · 2 saved · ~1m55s left")
        progress.sending?.allowedPerMinute = 3.6
        #expect(line().hasPrefix("4/10 sent · 4.0/min · service allows ~4/min ·"))
        // Past the likely end with work left: no negative time.
        progress.likelyEnd = now.addingTimeInterval(-3)
        #expect(line().hasSuffix("· finishing"))
        progress.outageSince = Date()
        #expect(line().contains("· service out since "), "\(line())")
        // Sharing the batch with other runners: what is left in it, and no guess at the time.
        progress.outageSince = nil
        progress.likelyEnd = nil
        progress.sending?.leftInBatch = 37
        #expect(
            line() == "4 sent · 37 left in the batch · 4.0/min · service allows ~4/min · 0.00 credits est. · "
                + "2 generating · 2 done · 2 saved")
    }

    @Test func aLineTooWideLosesItsLeastUsefulPartsAndKeepsTheTimeLeft() {
        var sending = DispatchCounters()
        sending.total = 12
        sending.submitted = 11
        sending.failed = 1
        sending.rateLimited = 3
        sending.retries = 2
        sending.sent = 14
        sending.firstSentAt = Date(timeIntervalSince1970: 1_790_000_000)
        sending.lastSentAt = sending.firstSentAt!.addingTimeInterval(13)
        sending.creditsEstimated = 22.5
        var following = TrackCounters()
        following.followed = 11
        following.completed = 6
        let now = sending.lastSentAt!
        let progress = RunProgress(
            sending: sending, following: following, saved: 6, likelyEnd: now.addingTimeInterval(25))
        let parts = ProgressReporter.describe(progress, now: now)
        let whole = ProgressReporter.fit(parts, width: .max)
        #expect(
            whole == "12/12 sent · 60.0/min · 22.50 credits est. · 429s 3 · retries 2 · 5 generating · 6 done · "
                + "6 saved · 1 failed · ~25s left")
        #expect(
            ProgressReporter.fit(parts, width: 80)
                == "12/12 sent · 429s 3 · 5 generating · 6 done · 6 saved · 1 failed · ~25s left")
        #expect(ProgressReporter.fit(parts, width: 40) == "12/12 sent · 1 failed · ~25s left")
        #expect(ProgressReporter.fit(parts, width: 10) == "~25s left")
    }

    @Test func aBatchHoldingJobsFailedForGoodEndsAsSomeFailedWhicheverTheFailure() {
        let sent = DispatchResult(counters: DispatchCounters(), stopReason: nil, budget: nil)
        #expect(RunOutcome.afterSending(sent, batch: BatchStatus(name: "b")) == .done)
        for state in JobState.failedForGood + [.invalid] {
            var batch = BatchStatus(name: "b")
            batch.totals.states[state.rawValue] = 1
            #expect(RunOutcome.afterSending(sent, batch: batch) == .someFailed, "\(state)")
        }
    }
}
