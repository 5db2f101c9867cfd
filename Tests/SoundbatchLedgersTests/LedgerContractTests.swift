import Foundation
import PostgresNIO
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchPostgres
@testable import SoundbatchSQLite

/// The seam's promises (`LedgerStore.swift`), kept by both backends alike: each test runs
/// once on SQLite and once on PostgreSQL.
@Suite struct LedgerContractTests {
    func feed(
        _ ledger: any LedgerStore, _ folder: TemporaryFolder, _ text: String, batch: String = "b",
        skipInvalid: Bool = false, name: String = "jobs.csv"
    ) async throws -> IngestSummary {
        try await ledger.ingest(CSVReader(path: folder.write(name, text)), batch: batch, skipInvalid: skipInvalid)
    }

    func states(_ ledger: any LedgerStore, _ batch: String = "b") async throws -> [String: Int] {
        try await ledger.status(batch: batch).first?.states.filter { $0.value > 0 } ?? [:]
    }

    @Test(arguments: Backend.allCases)
    func aFeedIsAllOrNothingAndKnowsItsRows(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            let first = try await feed(ledger, folder, "id,prompt,scene\na,door,hall\nb,rain,yard\n")
            #expect(first.newJobs == 2 && first.knownJobs == 0)
            #expect(first.forecast == PendingForecast(pending: 2, averageEstimate: nil))
            let again = try await feed(ledger, folder, "id,prompt,scene\na,door,hall\nb,rain,yard\nc,wind,\n")
            #expect(again.newJobs == 1 && again.knownJobs == 2)
            // A batch fed before: the feed cannot tell its pending jobs alone; the ledger can.
            #expect(again.forecast == nil)
            let batchID = try await ledger.batchID(named: "b")
            #expect(
                try await ledger.pendingForecast(batchID: batchID) == PendingForecast(pending: 3, averageEstimate: nil))
            // A changed prompt under a known id, a duplicate id, a broken row: nothing is kept.
            for text in [
                "id,prompt\na,a different door\nd,new\n", "id,prompt\nd,one\nd,two\n", "id,prompt\nd,x\ne,\n"
            ] {
                await #expect(throws: IngestError.self) { try await feed(ledger, folder, text) }
            }
            #expect(try await states(ledger) == ["pending": 3])
            // Rows without ids are known by their content, identical ones by their order.
            let content = try await feed(ledger, folder, "prompt\nthud\nthud\nclank\n", batch: "c")
            #expect(content.newJobs == 3)
            let refed = try await feed(ledger, folder, "prompt\nclank\nthud\nthud\nthud\n", batch: "c")
            #expect(refed.newJobs == 1 && refed.knownJobs == 3)
            // A row set aside as invalid is replaced by its correction.
            let skipped = try await feed(
                ledger, folder, "id,prompt,audio_length\nx,ok,5\ny,bad,lots\n", batch: "s", skipInvalid: true)
            #expect(skipped.invalidJobs == 1)
            let corrected = try await feed(ledger, folder, "id,prompt,audio_length\nx,ok,5\ny,good,5\n", batch: "s")
            #expect(corrected.knownJobs == 2 && corrected.newJobs == 0)
            #expect(try await states(ledger, "s") == ["pending": 2])
            await #expect {
                try await ledger.batchID(named: "nope")
            } throws: { error in
                guard case LedgerError.noSuchBatch("nope", let known) = error else { return false }
                return known == ["b", "c", "s"]
            }
        }
    }

    /// A new batch's feed finds its own rows only (PostgreSQL looks none up): an id given
    /// twice a thousand rows apart is refused, identical rows without ids are numbered in
    /// order across the feed's batches of rows, and feeding the file again adds nothing.
    @Test(arguments: Backend.allCases)
    func aNewBatchKnowsTheRowsItsOwnFeedAddedFarApart(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            let ids = (1...1200).map { "r\($0),sound \($0)\n" }.joined()
            await #expect(throws: IngestError.self) {
                try await feed(ledger, folder, "id,prompt\n" + ids + "r3,sound 3\n", batch: "twice")
            }
            await #expect(throws: LedgerError.self) { try await ledger.batchID(named: "twice") }
            let same = "prompt\n" + String(repeating: "thud\n", count: 700) + String(repeating: "clank\n", count: 600)
            let first = try await feed(ledger, folder, same + "thud\n", batch: "content")
            #expect(first.newJobs == 1301)
            let again = try await feed(ledger, folder, same + "thud\n", batch: "content")
            #expect(again.newJobs == 0 && again.knownJobs == 1301)
            // What COPY's text format escapes comes back as it was written.
            let odd = "a\tb\\c\r\nd \\N é"
            _ = try await feed(ledger, folder, "id,prompt,scene\nq,\"\(odd)\",\"\\N\"\n", batch: "odd")
            let row = try #require(
                try await rawRows(ledger, "SELECT prompt, metadata FROM jobs WHERE row_key = 'q'").first)
            #expect(try row["prompt"] == odd && row["metadata"] == #"{"scene":"\\N"}"#)
        }
    }

    @Test(arguments: Backend.allCases)
    func aJobIsMarkedBeforeItsRequestAndItsAnswerMovesItOnce(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            _ = try await feed(ledger, folder, "id,prompt\na,door\nb,rain\nc,wind\n")
            let batchID = try await ledger.batchID(named: "b")
            try await ledger.withSending(batch: "b") { _ in
                let pending = try await ledger.pendingJobs(batchID: batchID, afterID: 0, limit: 10)
                #expect(pending.map(\.row) == ["a", "b", "c"])
                let (a, b, c) = (pending[0].id, pending[1].id, pending[2].id)
                let attemptA = try await ledger.markSubmitting(jobID: a, now: Date())
                #expect(try await ledger.state(jobID: a) == .submitting)
                await #expect {
                    try await ledger.markSubmitting(jobID: a, now: Date())
                } throws: { error in
                    guard case LedgerError.notPending(a) = error else { return false }
                    return true
                }
                #expect(try await ledger.hasTasks(batchID: batchID))
                try await ledger.recordSubmission(
                    jobID: a, attemptID: attemptA,
                    outcome: .accepted(SubmitAnswer(taskID: "task-a", eta: 20, creditEstimate: 1.5)),
                    state: .submitted, latency: .milliseconds(80), now: Date())
                #expect(try await ledger.job(taskID: "task-a")?.id == a)
                let attemptB = try await ledger.markSubmitting(jobID: b, now: Date())
                try await ledger.recordSubmission(
                    jobID: b, attemptID: attemptB, outcome: .retryable(status: 503, error: "busy", retryAfter: nil),
                    state: .pending, latency: .milliseconds(10), now: Date())
                let attemptC = try await ledger.markSubmitting(jobID: c, now: Date())
                try await ledger.recordSubmission(
                    jobID: c, attemptID: attemptC, outcome: .noAnswer(status: nil, error: "no answer"),
                    state: .inDoubt, latency: .seconds(60), now: Date())
            }
            #expect(try await states(ledger) == ["submitted": 1, "pending": 1, "in_doubt": 1])
            let credit = try await ledger.creditState(batchID: batchID)
            #expect(credit.estimated == 1.5 && credit.largest == 1.5 && credit.inDoubt == 1)
            // The pending job at the average of the estimates so far, as `status` has it.
            let forecast = try await ledger.pendingForecast(batchID: batchID)
            #expect(forecast == PendingForecast(pending: 1, averageEstimate: 1.5))
            #expect(forecast == (try await ledger.status(batch: "b")[0].pendingForecast))
            #expect(try await ledger.requeueInDoubt(batchID: batchID, awaitingSince: nil, now: Date()).resent == 1)
            #expect(try await ledger.countPending(batchID: batchID) == 2)
        }
    }

    @Test(arguments: Backend.allCases)
    func aFeedThatRepeatsPendingPromptsIsTold(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            _ = try await feed(ledger, folder, "prompt,audio_length\ndoor,3\nrain,4\nwind,5\n", batch: "r")
            // The length column renamed: every row is keyed anew, and repeats a pending prompt.
            let renamed = try await feed(ledger, folder, "prompt,secs\ndoor,3\nrain,4\nwind,5\n", batch: "r")
            #expect(renamed.newJobs == 3 && renamed.repeatedPrompts == 3 && renamed.repeatsPendingRows)
            // A new file of new prompts does not.
            let other = try await feed(ledger, folder, "prompt\nthud\nclank\n", batch: "r")
            #expect(other.newJobs == 2 && other.repeatedPrompts == 0 && !other.repeatsPendingRows)
        }
    }

    @Test(arguments: Backend.allCases)
    func aFileNameIsTakenWhateverItsCaseAsACaseBlindFileSystemSeesIt(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            _ = try await feed(ledger, folder, "id,prompt\na,door\nb,rain\n")
            try await ledger.recordDownload(
                jobID: 1, path: "/s/École.wav", size: 3, sha256: "x", sound: nil, storing: false, now: Date())
            // Unicode letters fold, and a composed é is the é written as e and an accent.
            for name in ["/s/école.wav", "/s/ÉCOLE.WAV", "/s/E\u{301}cole.wav"] {
                #expect(try await ledger.isPathTaken(name, byOtherThan: 2), "\(name)")
            }
            let plain = try await ledger.isPathTaken("/s/ecole.wav", byOtherThan: 2)
            let itsOwn = try await ledger.isPathTaken("/s/école.wav", byOtherThan: 1)
            #expect(!plain && !itsOwn)
        }
    }

    /// A state this soundbatch does not know (a newer one's ledger, or a hand's edit) is
    /// never taken for another, nor left out of a count: whatever reads it stops, naming the
    /// row and the state; every command that reads it exits 65.
    @Test(arguments: Backend.allCases)
    func aStateSoundbatchDoesNotKnowStopsEveryCommandThatReadsIt(_ backend: Backend) async throws {
        try await backend.withCommandLedger { ledger, folder, location in
            _ = try await feed(ledger, folder, "id,prompt\na,door\nb,rain\nc,wind\n")
            let batchID = try await ledger.batchID(named: "b")
            let ids = try await ledger.withSending(batch: "b") { _ in
                Dictionary(
                    uniqueKeysWithValues: try await allPendingJobs(ledger, batchID: batchID).map { ($0.row, $0.id) })
            }
            try await rawSQL(ledger, "UPDATE jobs SET state = 'zombie', task_id = 't1' WHERE row_key = 'b'")
            func namesIt(_ error: any Error) -> Bool {
                guard case let LedgerError.unknownState(row, state) = error else { return false }
                return row == "b" && state == "zombie"
            }
            await #expect(performing: { try await ledger.state(jobID: ids["b"]!) }, throws: namesIt)
            await #expect(
                performing: {
                    try await ledger.recordStatus(jobID: ids["b"]!, RemoteStatus(status: "COMPLETED"), now: Date())
                },
                throws: namesIt)
            await #expect(performing: { try await ledger.status(batch: "b") }, throws: namesIt)
            await #expect(performing: { try await ledger.spendReport(ReportQuery(grouping: .day)) }, throws: namesIt)
            await #expect(performing: { try await ledger.reviewPage(batch: "b", ReviewQuery()) }, throws: namesIt)
            await #expect(performing: { try await ledger.requireKnownStates(batchID: batchID) }, throws: namesIt)
            await #expect(
                performing: { try await ledger.forEachReportLine(ReportQuery(), metadataKeys: []) { _ in } },
                throws: namesIt)
            // An earlier take's state too.
            try await rawSQL(ledger, "UPDATE jobs SET state = 'failed' WHERE row_key = 'b'")
            _ = try await ledger.startNewTakes(jobIDs: [ids["b"]!], prompts: [:], now: Date())
            try await rawSQL(ledger, "UPDATE takes SET state = 'zombie'")
            await #expect(performing: { try await ledger.requireKnownStates(batchID: nil) }, throws: namesIt)
            await #expect(
                performing: { try await ledger.forEachReportLine(ReportQuery(), metadataKeys: []) { _ in } },
                throws: namesIt)
            try await rawSQL(ledger, "UPDATE takes SET state = 'failed'")
            try await rawSQL(ledger, "UPDATE jobs SET state = 'zombie' WHERE row_key = 'b'")

            let library = folder.file("library")
            for command in [
                ["status"], ["report"], ["report", "--jobs"], ["retry", "--batch", "b", "--yes"],
                ["track", "--batch", "b"], ["export", "--batch", "b", "--to", library],
                ["review", "--batch", "b", "--listen", "127.0.0.1:0"]
            ] {
                let child = try Child(command + ["--ledger", location], in: folder, name: command[0])
                #expect(try await child.exitStatus(within: .seconds(30)) == 65, "\(command): \(child.stderr)")
                #expect(child.stderr.contains("the job b is in the state \"zombie\""), "\(command): \(child.stderr)")
            }
        }
    }

    /// An answer that comes after its job went on (held as ambiguous, then sent again and
    /// given another task) is kept as an earlier take, paid twice: no task ID is ever lost.
    @Test(arguments: Backend.allCases)
    func aLateAcceptedAnswerIsKeptAsATakePaidTwice(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            _ = try await feed(ledger, folder, "id,prompt\na,door\n")
            let batchID = try await ledger.batchID(named: "b")
            let (job, first) = try await ledger.withSending(batch: "b") { _ in
                let job = try await ledger.pendingJobs(batchID: batchID, afterID: 0, limit: 1)[0].id
                return (job, try await ledger.markSubmitting(jobID: job, now: Date()))
            }
            #expect(try await ledger.holdInterruptedSubmissions(now: Date()) <= 1)
            #expect(try await ledger.requeueInDoubt(batchID: batchID, awaitingSince: nil, now: Date()).resent == 1)
            try await ledger.withSending(batch: "b") { _ in
                let second = try await ledger.markSubmitting(jobID: job, now: Date())
                try await ledger.recordSubmission(
                    jobID: job, attemptID: second,
                    outcome: .accepted(SubmitAnswer(taskID: "task-2", creditEstimate: 2)),
                    state: .submitted, latency: .zero, now: Date())
            }
            try await ledger.recordSubmission(
                jobID: job, attemptID: first, outcome: .accepted(SubmitAnswer(taskID: "task-1", creditEstimate: 1.5)),
                state: .submitted, latency: .seconds(90), now: Date())
            #expect(try await ledger.job(taskID: "task-2")?.id == job)
            #expect(try await states(ledger) == ["submitted": 1])
            var tasks: [String] = []
            try await ledger.forEachReportLine(ReportQuery(), metadataKeys: []) { line in
                if case let .text(task) = line.value("task_id") { tasks.append(task) }
            }
            #expect(tasks == ["task-1", "task-2"])
            let total = try await ledger.spendReport(ReportQuery()).total
            #expect(total.paidTwice == 1 && total.earlierTakes == 1 && total.creditsEstimated == 3.5)
            // A refusal that comes late changes nothing of the job.
            let third = try await ledger.withSending(batch: "b") { _ in
                try await rawSQL(ledger, "UPDATE jobs SET state = 'pending'")
                return try await ledger.markSubmitting(jobID: job, now: Date())
            }
            try await rawSQL(ledger, "UPDATE jobs SET state = 'submitted'")
            try await ledger.recordSubmission(
                jobID: job, attemptID: third, outcome: .rejected(status: 422, error: "late"), state: .failed,
                latency: .zero, now: Date())
            #expect(try await states(ledger) == ["submitted": 1])
        }
    }

    @Test(arguments: Backend.allCases)
    func onlyJobsNeverSentAreDropped(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            _ = try await feed(
                ledger, folder, "id,prompt,audio_length\na,door,3\nb,rain,3\nc,wind,3\nd,thud,3\ne,bad,lots\n",
                skipInvalid: true)
            let batchID = try await ledger.batchID(named: "b")
            var ids: [String: Int64] = [:]
            try await ledger.withSending(batch: "b") { _ in
                for job in try await allPendingJobs(ledger, batchID: batchID) { ids[job.row] = job.id }
                // b: refused with a 503, pending again (no task); c: no answer, then put back
                // to be sent again (in doubt); d: accepted, then retried (an earlier take).
                for (row, outcome, state) in [
                    ("b", SubmitOutcome.retryable(status: 503, error: "busy", retryAfter: nil), JobState.pending),
                    ("c", .noAnswer(status: nil, error: "no answer"), .inDoubt),
                    ("d", .accepted(SubmitAnswer(taskID: "t-d", creditEstimate: 1)), .submitted)
                ] {
                    let attempt = try await ledger.markSubmitting(jobID: ids[row]!, now: Date())
                    try await ledger.recordSubmission(
                        jobID: ids[row]!, attemptID: attempt, outcome: outcome, state: state, latency: .zero,
                        now: Date())
                }
            }
            try await ledger.recordStatus(jobID: ids["d"]!, RemoteStatus(status: "FAILED"), now: Date())
            _ = try await ledger.startNewTakes(jobIDs: [ids["d"]!], prompts: [:], now: Date())
            _ = try await ledger.requeueInDoubt(batchID: batchID, awaitingSince: nil, now: Date())

            let candidates = try await ledger.dropCandidates(
                batchID: batchID, states: [.pending, .invalid], lastFeed: false)
            #expect(
                Dictionary(uniqueKeysWithValues: candidates.map { ($0.rowKey, $0.neverSent) })
                    == ["a": true, "b": true, "c": false, "d": false, "e": true])
            #expect(
                try await ledger.dropCandidates(batchID: batchID, states: [.invalid], lastFeed: true).map(\.rowKey) == [
                    "e"
                ])
            // Asked to drop every one of them, it drops only those never sent.
            #expect(try await ledger.drop(jobIDs: candidates.map(\.id)) == 3)
            #expect(try await states(ledger) == ["pending": 2])
            let left = try await ledger.dropCandidates(batchID: batchID, states: [.pending, .invalid], lastFeed: false)
            #expect(Set(left.map(\.rowKey)) == ["c", "d"])
        }
    }

    @Test(arguments: Backend.allCases)
    func requestsInFlightWhenASenderStopsAreHeldAsAmbiguous(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            _ = try await feed(ledger, folder, "id,prompt\na,door\n")
            let batchID = try await ledger.batchID(named: "b")
            try await ledger.withSending(batch: "b") { _ in
                let job = try await ledger.pendingJobs(batchID: batchID, afterID: 0, limit: 1)[0]
                _ = try await ledger.markSubmitting(jobID: job.id, now: Date())
            }
            _ = try await ledger.holdInterruptedSubmissions(now: Date())
            #expect(try await states(ledger) == ["in_doubt": 1])
            let status = try await ledger.status(batch: "b")[0]
            #expect(status.failures.isEmpty)
            let report = try await ledger.spendReport(ReportQuery(batch: "b"))
            #expect(report.total.unchargedJobs == 1)
        }
    }

    @Test(arguments: Backend.allCases)
    func newsOfATaskMovesOnlyASubmittedJobAndTheSameNewsTwiceChangesNothing(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            _ = try await feed(ledger, folder, "id,prompt\na,door\nb,rain\n")
            let batchID = try await ledger.batchID(named: "b")
            let ids = try await ledger.withSending(batch: "b") { _ in
                var ids: [Int64] = []
                for job in try await ledger.pendingJobs(batchID: batchID, afterID: 0, limit: 10) {
                    let attempt = try await ledger.markSubmitting(jobID: job.id, now: Date())
                    try await ledger.recordSubmission(
                        jobID: job.id, attemptID: attempt,
                        outcome: .accepted(SubmitAnswer(taskID: "t-\(job.row)", creditEstimate: 2)),
                        state: .submitted, latency: .zero, now: Date())
                    ids.append(job.id)
                }
                return ids
            }
            let tracked = try await ledger.withFollowing(batch: "b") { _ in
                try await ledger.submittedJobs(batchID: batchID)
            }
            #expect(tracked.map(\.taskID) == ["t-a", "t-b"])
            let done = RemoteStatus(status: "COMPLETED", audioURL: "https://x/a.wav", conversionCost: 2.25)
            #expect(try await ledger.recordStatus(jobID: ids[0], done, now: Date()) == (.completed, true))
            #expect(try await ledger.recordStatus(jobID: ids[0], done, now: Date()) == (.completed, false))
            #expect(
                try await ledger.recordStatus(jobID: ids[0], RemoteStatus(status: "IN_QUEUE"), now: Date())
                    == (.completed, false))
            #expect(try await ledger.recordMissing(jobID: ids[1], reason: "unknown task", now: Date()))
            #expect(try await !ledger.recordMissing(jobID: ids[1], reason: "unknown task", now: Date()))
            // A look's attempt and its news go in together.
            let looked = try await ledger.recordLook(
                jobID: ids[0], .found(done), startedAt: Date(), latency: .milliseconds(5), now: Date())
            #expect(looked == .completed)
            #expect(
                try await ledger.recordLook(
                    jobID: ids[0], .retryable(status: 503, error: "busy", retryAfter: nil), startedAt: Date(),
                    latency: .milliseconds(5), now: Date()) == nil)
            let audio = try await ledger.audioJobs(batchID: batchID)
            #expect(audio.map(\.audioURL) == ["https://x/a.wav"] && !audio[0].keyedByContent)
            try await ledger.recordDownload(
                jobID: ids[0], path: "/s/Door.wav", size: 10, sha256: "abc", sound: nil, storing: false, now: Date())
            #expect(try await ledger.audioJob(id: ids[0])?.downloadedPath == "/s/Door.wav")
            #expect(try await ledger.isPathTaken("/s/door.WAV", byOtherThan: ids[1]))
            #expect(try await !ledger.isPathTaken("/s/door.wav", byOtherThan: ids[0]))
            let status = try await ledger.status(batch: "b")[0]
            #expect(status.conversionCostTotal == 2.25 && status.failures.map(\.reason) == ["unknown task"])
        }
    }

    @Test(arguments: Backend.allCases)
    func aRowAskingForSeveralSoundsGetsAJobForEachNumberedTogetherAndOnlyOnce(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            func feed(_ text: String, takes: Int) async throws -> IngestSummary {
                try await ledger.ingest(
                    CSVReader(path: folder.write("steps.csv", text)), batch: "b", skipInvalid: false, takes: takes)
            }
            let batchID = { try await ledger.batchID(named: "b") }
            /// Each row's name and its takes, in the order the review shows them.
            func takes() async throws -> [String] {
                try await ledger.reviewRows(batchID: batchID(), ReviewQuery()).rows.map { row in
                    "\(row.name):" + row.takes.map { String($0.take) }.joined(separator: ",")
                }
            }
            let sheet = "id,prompt,takes\na,step on gravel,\nb,step on wood,2\n"
            let first = try await feed(sheet, takes: 3)
            #expect(first.newJobs == 2 && first.addedVariations == 3)
            #expect(first.forecast == PendingForecast(pending: 5, averageEstimate: nil))
            #expect(try await takes() == ["a:1,2,3", "b:1,2"], "a row of the sheet with its variations' takes")
            // Fed again: nothing added.
            let again = try await feed(sheet, takes: 3)
            #expect(again.newJobs == 0 && again.knownJobs == 2 && again.addedVariations == 0)

            // A new take of a's second sound is numbered after the row's latest.
            let second = try await ledger.withSending(batch: "b") { _ in
                var ids: [Int64] = []
                for job in try await allPendingJobs(ledger, batchID: try await batchID()) {
                    let attempt = try await ledger.markSubmitting(jobID: job.id, now: Date())
                    try await ledger.recordSubmission(
                        jobID: job.id, attemptID: attempt,
                        outcome: .accepted(SubmitAnswer(taskID: "t\(job.id)", creditEstimate: 1)), state: .submitted,
                        latency: .zero, now: Date())
                    ids.append(job.id)
                }
                return ids[2]
            }
            try await ledger.recordStatus(
                jobID: second, RemoteStatus(status: "FAILED", statusMessage: "no"), now: Date())
            #expect(try await ledger.startNewTakes(jobIDs: [second], prompts: [:], now: Date()) == 1)
            #expect(try await takes() == ["a:1,2,3,4", "b:1,2"])

            // More sounds asked later: only the missing ones, numbered on.
            let more = try await feed(sheet.replacingOccurrences(of: ",2\n", with: ",\n"), takes: 5)
            #expect(more.newJobs == 0 && more.addedVariations == 5)
            #expect(try await takes() == ["a:1,2,3,4,5,6", "b:1,2,3,4,5"])
            #expect(try await states(ledger) == ["submitted": 4, "pending": 6])

            // A takes value out of range is the row's problem, with the fix.
            await #expect {
                try await feed("id,prompt,takes\nc,door,21\n", takes: 1)
            } throws: { error in
                "\(error)".contains("steps.csv:2: takes \"21\" is not a whole number from 1 to 20")
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func aCallbackNamingItsRequestSettlesAJobInDoubtAndATaskPaidTwiceIsKept(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            _ = try await feed(ledger, folder, "id,prompt\na,door\nb,rain\n")
            let batchID = try await ledger.batchID(named: "b")
            let (first, second) = (CallbackToken.make(), CallbackToken.make())
            /// Sends the next pending job with `token`, answered `outcome`.
            func send(_ token: String, _ outcome: SubmitOutcome, state: JobState) async throws -> Int64 {
                try await ledger.withSending(batch: "b") { _ in
                    let job = try await ledger.pendingJobs(batchID: batchID, afterID: 0, limit: 1)[0]
                    let attempt = try await ledger.markSubmitting(
                        jobID: job.id, callbackToken: token, now: Date())
                    try await ledger.recordSubmission(
                        jobID: job.id, attemptID: attempt, outcome: outcome, state: state, latency: .zero, now: Date())
                    return job.id
                }
            }
            let unanswered = SubmitOutcome.noAnswer(status: nil, error: "timed out")
            #expect(try await ledger.latestRequestAwaitingCallback(batchID: batchID) == nil)
            let door = try await send(first, unanswered, state: .inDoubt)
            #expect(try await ledger.job(callbackToken: first)! == (door, batchID))
            // Its callback may come: when its request left is known, to the second.
            #expect(
                try await ledger.latestRequestAwaitingCallback(batchID: batchID).map {
                    abs($0.timeIntervalSinceNow) < 60
                }
                    == true)
            #expect(try await ledger.job(callbackToken: CallbackToken.make()) == nil)
            #expect(try await ledger.identity().count >= 32)

            // The callback of the unanswered request: its job has the task, and is in doubt no more.
            let done = RemoteStatus(
                taskID: "task-door", status: "COMPLETED", audioURL: "http://x/a.mp3", conversionCost: 2)
            #expect(
                try await ledger.settle(
                    jobID: door, callbackToken: first, taskID: "task-door", status: done, now: Date()) == .settled)
            #expect(try await ledger.job(taskID: "task-door")?.id == door)
            #expect(try await ledger.state(jobID: door) == .submitted)
            #expect(try await ledger.latestRequestAwaitingCallback(batchID: batchID) == nil, "settled: none awaited")
            #expect(
                try await ledger.settle(
                    jobID: door, callbackToken: first, taskID: "task-door", status: done, now: Date()) == .alreadyKnown)
            #expect(try await ledger.spendReport(ReportQuery()).total.inDoubt == 0)
            #expect(try await ledger.longestGeneration(batchID: batchID) == nil)
            try await ledger.recordStatus(jobID: door, done, now: Date(timeIntervalSinceNow: 30))
            // From the request's start to 30 s from now: 30 s and the test's own time since.
            #expect(try await ledger.longestGeneration(batchID: batchID).map { (29...60).contains($0) } == true)

            // A job in doubt sent again on the user's word, given another task: the first
            // request's task is kept as an earlier take, numbered after the row's latest.
            let rain = try await send(second, unanswered, state: .inDoubt)
            // Within the doubt window its callback may still come: held.
            #expect(
                try await ledger.requeueInDoubt(
                    batchID: batchID, awaitingSince: Date(timeIntervalSinceNow: -600), now: Date())
                    == Requeued(resent: 0, waiting: 1, settledByCallback: 1))
            // Past it, sent again, as the user asked.
            #expect(
                try await ledger.requeueInDoubt(
                    batchID: batchID, awaitingSince: Date(timeIntervalSinceNow: 60), now: Date())
                    == Requeued(resent: 1, waiting: 0, settledByCallback: 1))
            _ = try await send(
                CallbackToken.make(), .accepted(SubmitAnswer(taskID: "task-rain-2", creditEstimate: 2)),
                state: .submitted)
            let rainDone = RemoteStatus(
                taskID: "task-rain-1", status: "COMPLETED", audioURL: "http://x/b.mp3", conversionCost: 2)
            #expect(
                try await ledger.settle(
                    jobID: rain, callbackToken: second, taskID: "task-rain-1", status: rainDone, now: Date())
                    == .keptAsEarlierTake)
            let row = try await ledger.reviewRows(batchID: batchID, ReviewQuery(jobIDs: [rain])).rows[0]
            // In take order: the one sent again (take 1), the task found (take 2).
            #expect(row.takes.map(\.take) == [1, 2] && row.takes.map(\.state) == [.submitted, .completed])
            #expect(try await ledger.spendReport(ReportQuery()).total.earlierTakes == 1)
        }
    }

    @Test(arguments: Backend.allCases)
    func aCallbackNotYetConfirmedHoldsItsJobUntilConfirmedOrRefuted(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            _ = try await feed(ledger, folder, "id,prompt\nc,wind\n")
            let batchID = try await ledger.batchID(named: "b")
            let token = CallbackToken.make()
            let job = try await ledger.withSending(batch: "b") { _ in
                let job = try await ledger.pendingJobs(batchID: batchID, afterID: 0, limit: 1)[0]
                let attempt = try await ledger.markSubmitting(jobID: job.id, callbackToken: token, now: Date())
                try await ledger.recordSubmission(
                    jobID: job.id, attemptID: attempt, outcome: .noAnswer(status: nil, error: "reset"), state: .inDoubt,
                    latency: .zero, now: Date())
                return job.id
            }
            try await ledger.noteCallback(token: token, taskID: "task-c")
            try await ledger.noteCallback(token: token, taskID: "task-other")  // the first one named stays
            #expect(
                try await ledger.unconfirmedCallbacks(batchID: batchID) == [
                    UnconfirmedCallback(jobID: job, token: token, taskID: "task-c")
                ])
            let later = Date(timeIntervalSinceNow: 60)
            #expect(try await ledger.requeueInDoubt(batchID: batchID, awaitingSince: later, now: Date()).waiting == 1)
            try await ledger.forgetCallback(token: token)
            #expect(try await ledger.unconfirmedCallbacks(batchID: batchID).isEmpty)
            #expect(try await ledger.requeueInDoubt(batchID: batchID, awaitingSince: later, now: Date()).resent == 1)

            // A callback while its request is in flight (or its sender died mid-request): kept,
            // and confirmed once the job is held as ambiguous.
            _ = try await feed(ledger, folder, "id,prompt\nc,wind\nd,hail\n")
            let flying = CallbackToken.make()
            let hail = try await ledger.withSending(batch: "b") { _ in
                let hail = try #require(try await allPendingJobs(ledger, batchID: batchID).first { $0.row == "d" })
                _ = try await ledger.markSubmitting(jobID: hail.id, callbackToken: flying, now: Date())
                let done = RemoteStatus(taskID: "task-d", status: "COMPLETED")
                #expect(
                    try await ledger.settle(
                        jobID: hail.id, callbackToken: flying, taskID: "task-d", status: done, now: Date()) == .noted)
                return hail.id
            }
            try await ledger.withSending(batch: "b") { _ in _ = try await ledger.holdInterruptedSubmissions(now: Date())
            }
            #expect(
                try await ledger.unconfirmedCallbacks(batchID: batchID).contains(
                    UnconfirmedCallback(jobID: hail, token: flying, taskID: "task-d")))

            // By hand: a task found in the account, for a job in doubt only, and only once.
            #expect(try await ledger.adopt(jobID: hail, taskID: "task-c", now: Date()) == .adopted)
            #expect(try await ledger.state(jobID: hail) == .submitted)
            #expect(try await ledger.adopt(jobID: job, taskID: "task-c", now: Date()) == .taskKnown)
            _ = try await feed(ledger, folder, "id,prompt\nc,wind\nd,hail\ne,rain\n")
            let rain = try await ledger.jobIDs(batchID: batchID, row: "e")[0]
            #expect(try await ledger.adopt(jobID: rain, taskID: "task-e", now: Date()) == .notInDoubt)
        }
    }

    @Test(arguments: Backend.allCases)
    func aNewTakeKeepsTheEarlierOneAndItsCost(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            _ = try await feed(ledger, folder, "id,prompt\na,door\n")
            let batchID = try await ledger.batchID(named: "b")
            let id = try await ledger.withSending(batch: "b") { _ in
                let job = try await ledger.pendingJobs(batchID: batchID, afterID: 0, limit: 1)[0]
                let attempt = try await ledger.markSubmitting(jobID: job.id, now: Date())
                try await ledger.recordSubmission(
                    jobID: job.id, attemptID: attempt,
                    outcome: .accepted(SubmitAnswer(taskID: "t1", creditEstimate: 3)), state: .submitted,
                    latency: .zero, now: Date())
                return job.id
            }
            try await ledger.recordStatus(jobID: id, RemoteStatus(status: "FAILED", statusMessage: "no"), now: Date())
            let candidates = try await ledger.retryCandidates(batchID: batchID, states: JobState.finished)
            #expect(candidates.map(\.state) == [.generationFailed] && candidates[0].creditEstimate == 3)
            #expect(try await ledger.startNewTakes(jobIDs: [id], prompts: [:], now: Date()) == 1)
            #expect(try await states(ledger) == ["pending": 1])
            #expect(try await ledger.creditState(batchID: batchID).estimated == 3)
            let report = try await ledger.spendReport(ReportQuery())
            #expect(report.total.earlierTakes == 1 && report.total.creditsEstimated == 3)
            #expect(try await ledger.status(batch: nil)[0].creditEstimateTotal == 3)
        }
    }

    @Test(arguments: Backend.allCases)
    func aBatchRemembersHowItIsRun(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            _ = try await feed(ledger, folder, "prompt\nx\n")
            let batchID = try await ledger.batchID(named: "b")
            #expect(try await ledger.settings(ofBatch: batchID) == nil)
            var settings = BatchSettings()
            settings.service = .sandbox(port: 4321, callbackPort: nil)
            settings.maxCredits = 12.5
            try await ledger.recordSettings(settings, ofBatch: batchID)
            #expect(try await ledger.settings(ofBatch: batchID) == settings)
            #expect(try await ledger.status(batch: "b")[0].settings == settings)
            #expect(try await !ledger.hasTasks(batchID: batchID))
        }
    }
}

/// The same work recorded on both backends reads the same in every report.
@Suite struct ReportsAgreeTests {
    /// What each backend's reports say, after the same work on each.
    struct Readings: Equatable {
        var reports: [SpendReport] = []
        var status: [BatchStatus] = []
        var timeline: [CreditPoint] = []
        var failed: [FailedJob] = []
        var keys: [String] = []
        var jobs: [[ReportValue]] = []
    }

    static let start = Date(timeIntervalSince1970: 1_790_000_000)

    func work(_ ledger: any LedgerStore, _ folder: TemporaryFolder) async throws -> Readings {
        let text = csvText(
            [["id", "prompt", "audio_length", "scene", "odd \"one\", here"]]
                + (1...8).map { ["r\($0)", "sound \($0)", $0 % 3 == 0 ? "" : "\($0 * 5)", "s\($0 % 2)", "v\($0)"] })
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("a.csv", text)), batch: "a", skipInvalid: false, now: Self.start)
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("b.csv", "prompt\nthud\nthud\nclank\n")), batch: "B", skipInvalid: false,
            now: Self.start)
        for batch in ["a", "B"] {
            let batchID = try await ledger.batchID(named: batch)
            try await ledger.withSending(batch: batch) { _ in
                for (index, job) in try await allPendingJobs(ledger, batchID: batchID).enumerated() {
                    let at = Self.start.addingTimeInterval(Double(index) * 7 + (batch == "B" ? 86_400 : 0))
                    let attempt = try await ledger.markSubmitting(jobID: job.id, now: at)
                    let outcome: SubmitOutcome =
                        switch index % 5 {
                        case 0, 1, 2:
                            .accepted(SubmitAnswer(taskID: "\(batch)\(index)", creditEstimate: Double(index) + 0.25))
                        case 3: .rejected(status: 422, error: "prompt refused")
                        default: .noAnswer(status: nil, error: "no answer")
                        }
                    let state: JobState =
                        switch outcome {
                        case .accepted: .submitted
                        case .rejected: .failed
                        default: .inDoubt
                        }
                    try await ledger.recordSubmission(
                        jobID: job.id, attemptID: attempt, outcome: outcome, state: state, latency: .milliseconds(9),
                        now: at)
                    guard case .accepted = outcome, index % 3 != 2 else { continue }
                    let news =
                        index % 2 == 0
                        ? RemoteStatus(status: "COMPLETED", audioURL: "https://x/\(index)", conversionCost: 1.5)
                        : RemoteStatus(status: "FAILED", statusMessage: "could not make it")
                    try await ledger.recordStatus(jobID: job.id, news, now: at.addingTimeInterval(30))
                }
            }
        }
        let batchID = try await ledger.batchID(named: "a")
        let failed = try await ledger.retryCandidates(batchID: batchID, states: [.generationFailed])
        _ = try await ledger.startNewTakes(jobIDs: failed.map(\.id), prompts: [:], now: Self.start)
        return try await read(ledger)
    }

    func read(_ ledger: any LedgerStore) async throws -> Readings {
        var readings = Readings()
        for grouping in ReportQuery.Grouping.allCases {
            readings.reports.append(try await ledger.spendReport(ReportQuery(grouping: grouping)))
        }
        let day = Timestamp.string(Self.start).prefix(10)
        readings.reports.append(try await ledger.spendReport(ReportQuery(batch: "a", since: "\(day)T00:00:00Z")))
        readings.status = try await ledger.status(batch: nil)
        readings.timeline = try await ledger.creditTimeline(ReportQuery(), points: 300)
        readings.failed = try await ledger.failedJobs(ReportQuery(), limit: 100)
        readings.keys = try await ledger.metadataKeys(ReportQuery())
        var jobs: [[ReportValue]] = []
        try await ledger.forEachReportLine(ReportQuery(), metadataKeys: readings.keys) { jobs.append($0.values) }
        readings.jobs = jobs
        return readings
    }

    /// The readings with every sentence taken out: what a report counts, never its words.
    func facts(_ readings: Readings) -> Readings {
        var facts = readings
        facts.status = readings.status.map { status in
            var status = status
            status.failures = status.failures.map { BatchStatus.Failure(state: $0.state, reason: "", jobs: $0.jobs) }
            return status
        }
        facts.failed = readings.failed.map { FailedJob(row: $0.row, prompt: $0.prompt, state: $0.state, reason: "") }
        let words = ["last_error", "reason"].compactMap { ReportJob.columns.firstIndex(of: $0) }
        facts.jobs = readings.jobs.map { line in
            line.enumerated().map { words.contains($0.offset) ? .none : $0.element }
        }
        return facts
    }

    @Test(arguments: Backend.allCases)
    func rewordingEveryMessageChangesNoReport(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            let before = try await work(ledger, folder)
            #expect(before.reports[0].total.unchargedJobs > 0 && !before.failed.isEmpty)
            // Every sentence the ledger holds, said another way.
            for sql in [
                "UPDATE jobs SET last_error = 'reworded' WHERE last_error IS NOT NULL",
                "UPDATE jobs SET message = 'reworded', status_msg = 'reworded'",
                "UPDATE takes SET last_error = 'reworded', status_msg = 'reworded'",
                "UPDATE attempts SET error = 'said differently' WHERE error IS NOT NULL"
            ] {
                try await rawSQL(ledger, sql)
            }
            let after = try await read(ledger)
            #expect(after.failed.allSatisfy { $0.reason == "reworded" })
            #expect(facts(after) == facts(before))
        }
    }

    @Test func everyReportReadsTheSameOnBothBackends() async throws {
        let sqlite = try await Backend.sqlite.withLedger { try await work($0, $1) }
        let postgres = try await Backend.postgres.withLedger { try await work($0, $1) }
        #expect(sqlite.reports.map(\.total.jobs) == [11, 11, 11, 4])
        #expect(sqlite.keys == ["scene", "odd \"one\", here"])
        #expect(!sqlite.failed.isEmpty && sqlite.jobs.count == 11 + 2)  // a line a take: two jobs were retried
        #expect(sqlite.reports == postgres.reports)
        #expect(sqlite.status == postgres.status)
        #expect(sqlite.timeline == postgres.timeline)
        #expect(sqlite.failed == postgres.failed)
        #expect(sqlite.keys == postgres.keys)
        #expect(sqlite.jobs == postgres.jobs)
    }
}

/// `soundbatch ledger copy`: a ledger moved to the other backend, and back, reads the same.
@Suite struct LedgerCopyTests {
    @Test func aLedgerCopiedToPostgreSQLAndBackReadsTheSame() async throws {
        let reports = ReportsAgreeTests()
        try await Backend.sqlite.withLedger { original, folder in
            let before = try await reports.work(original, folder)
            try await Backend.postgres.withLedger { copy, _ in
                let copied = try await copy.copy(from: original, location: copy.location)
                #expect(copied[.batches] == 2 && copied[.jobs] == 11 && copied[.takes] == 2)
                #expect(try await reports.read(copy) == before)
                // A copy into a ledger that holds batches is refused, and changes nothing.
                await #expect(throws: LedgerCopyError.self) { try await copy.copy(from: original, location: "") }
                #expect(try await reports.read(copy) == before)
                let back = try SQLiteLedger(path: folder.file("back.sqlite"))
                _ = try await back.copy(from: copy, location: back.location)
                #expect(try await reports.read(back) == before)
                // The copy numbers what comes next after what it holds.
                let more = try await copy.ingest(
                    CSVReader(path: folder.write("more.csv", "prompt\nnew\n")), batch: "a", skipInvalid: false)
                #expect(more.newJobs == 1)
            }
        }
    }
}
