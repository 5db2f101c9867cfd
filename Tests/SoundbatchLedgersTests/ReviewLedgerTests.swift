import Foundation
import SoundbatchTesting
import Testing

@testable import SoundbatchCore

/// What the review asks of the ledger, kept by both backends alike.
@Suite struct ReviewLedgerTests {
    /// A batch of four rows: door (completed, then re-rolled with an edited prompt and
    /// completed again), Rain (completed), wind (failed), École (pending).
    func batch(_ ledger: any LedgerStore, _ folder: TemporaryFolder) async throws -> (Int64, [String: Int64]) {
        _ = try await ledger.ingest(
            CSVReader(
                path: folder.write(
                    "b.csv",
                    "id,prompt,scene\ndoor,a door creaks,hall\nrain,Rain on tin,yard\nwind,wind,moor\nécole,École bell,school\n"
                )),
            batch: "b", skipInvalid: false)
        let batchID = try await ledger.batchID(named: "b")
        let ids = Dictionary(
            uniqueKeysWithValues: try await ledger.withSending(batch: "b") { _ in
                try await allPendingJobs(ledger, batchID: batchID).map { ($0.row, $0.id) }
            })
        func send(_ row: String, _ outcome: SubmitOutcome, _ state: JobState) async throws {
            let attempt = try await ledger.markSubmitting(jobID: ids[row]!, now: Date())
            try await ledger.recordSubmission(
                jobID: ids[row]!, attemptID: attempt, outcome: outcome, state: state, latency: .zero, now: Date())
        }
        func complete(_ row: String, _ task: String, cost: Double) async throws {
            try await send(row, .accepted(SubmitAnswer(taskID: task, creditEstimate: cost)), .submitted)
            try await ledger.recordStatus(
                jobID: ids[row]!,
                RemoteStatus(status: "COMPLETED", audioURL: "https://x/\(task).wav", conversionCost: cost),
                now: Date())
            try await ledger.recordDownload(
                jobID: ids[row]!, path: "/s/\(task).wav", size: 4, sha256: "x",
                sound: SoundSummary(seconds: 3, peaks: [0, 128, 255]), storing: false, now: Date())
        }
        try await ledger.withSending(batch: "b") { _ in
            try await complete("door", "d1", cost: 1.5)
            try await complete("rain", "r1", cost: 2)
            try await send("wind", .rejected(status: 422, error: "refused"), .failed)
        }
        #expect(try await ledger.setVerdict(.rejected, jobID: ids["door"]!, take: 1) == .recorded)
        _ = try await ledger.startNewTakes(
            jobIDs: [ids["door"]!], prompts: [ids["door"]!: "a door creaks, more reverb"],
            now: Date())
        try await ledger.withSending(batch: "b") { _ in
            let pending = try await ledger.pendingJobs(batchID: batchID, afterID: 0, limit: 8)
            #expect(pending.first { $0.id == ids["door"]! }?.request.prompt == "a door creaks, more reverb")
            try await complete("door", "d2", cost: 1.25)
        }
        return (batchID, ids)
    }

    @Test(arguments: Backend.allCases)
    func twoReviewersOfOneBatchSeeEachOthersVerdicts(_ backend: Backend) async throws {
        try await backend.withTwoConnections { mine, theirs, folder in
            let (_, ids) = try await batch(mine, folder)
            #expect(try await theirs.setVerdict(.kept, jobID: ids["rain"]!, take: 1) == .recorded)
            let page = try await mine.reviewPage(batch: "b", ReviewQuery(verdict: .kept))
            #expect(
                page.rows.map(\.name) == ["rain"] && page.counts == VerdictCounts(kept: 1, rejected: 1, unreviewed: 1))
            #expect(try await mine.setVerdict(nil, jobID: ids["rain"]!, take: 1) == .recorded)
            #expect(try await theirs.reviewPage(batch: "b", ReviewQuery(verdict: .kept)).rows.isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func rowsComeWithEveryTakeAndTheirVerdicts(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            let (batchID, ids) = try await batch(ledger, folder)
            let page = try await ledger.reviewPage(batch: "b", ReviewQuery())
            #expect(page.matching == 4 && page.rows.map(\.name) == ["door", "rain", "wind", "école"])
            let door = page.rows[0]
            #expect(door.takes.map(\.take) == [1, 2] && door.takes.map(\.verdict) == [.rejected, nil])
            #expect(door.takes.map(\.prompt) == ["a door creaks", "a door creaks, more reverb"])
            #expect(door.takes.map(\.credits) == [1.5, 1.25] && door.takes.allSatisfy { $0.saved && $0.seconds == 3 })
            #expect(door.takes[0].peaks == SoundSummary(seconds: 3, peaks: [0, 128, 255]).peaksText)
            #expect(door.columns?.contains("\"scene\":\"hall\"") == true)
            #expect(page.rows[2].state == .failed && page.rows[2].reason == "refused" && page.rows[2].takes.count == 1)
            #expect(page.counts == VerdictCounts(kept: 0, rejected: 1, unreviewed: 2))

            // Only a sound is judged; a take that is not there is said so.
            #expect(try await ledger.setVerdict(.kept, jobID: ids["wind"]!, take: 1) == .notASound(.failed))
            #expect(try await ledger.setVerdict(.kept, jobID: ids["rain"]!, take: 2) == .noSuchTake)
            #expect(try await ledger.setVerdict(.kept, jobID: ids["door"]!, take: 2) == .recorded)
            #expect(
                try await ledger.reviewPage(batch: "b", ReviewQuery()).counts
                    == VerdictCounts(kept: 1, rejected: 1, unreviewed: 1))

            // Found by id, prompt (an earlier take's too) or column, whatever the case of their letters.
            func found(_ query: ReviewQuery) async throws -> [String] {
                try await ledger.reviewRows(batchID: batchID, query).rows.map(\.name)
            }
            #expect(try await found(ReviewQuery(search: "RAIN")) == ["rain"])
            #expect(try await found(ReviewQuery(search: "reverb")) == ["door"])
            #expect(try await found(ReviewQuery(search: "école")) == ["école"])
            // Case is folded alike on both backends, whatever the server's collation: Swift's.
            #expect(try await found(ReviewQuery(search: "ÉCOLE BELL")) == ["école"])
            #expect(try await found(ReviewQuery(search: "MORE REVERB")) == ["door"])
            #expect(try await found(ReviewQuery(search: "moor")) == ["wind"])
            #expect(try await found(ReviewQuery(search: "100%")) == [])
            #expect(try await found(ReviewQuery(state: .pending)) == ["école"])
            #expect(try await found(ReviewQuery(verdict: .kept)) == ["door"])
            #expect(try await found(ReviewQuery(verdict: .unreviewed)) == ["rain"])
            #expect(try await found(ReviewQuery(offset: 1, limit: 2)) == ["rain", "wind"])
            #expect(try await found(ReviewQuery(jobIDs: [ids["wind"]!])) == ["wind"])
            #expect(try await ledger.jobIDs(batchID: batchID, row: "rain") == [ids["rain"]!])
            #expect(try await ledger.jobIDs(batchID: batchID, row: "3") == [ids["rain"]!])

            // Where each take's sound is, and what was measured of it.
            let first = try #require(try await ledger.sound(jobID: ids["door"]!, take: 1))
            #expect(first.sound.path == "/s/d1.wav" && first.summary?.seconds == 3)
            #expect(try await ledger.sound(jobID: ids["wind"]!, take: 1) == nil)
            try await ledger.recordSound(SoundSummary(seconds: 4.5, peaks: [9]), jobID: ids["door"]!, take: 1)
            #expect(try await ledger.sound(jobID: ids["door"]!, take: 1)?.summary?.seconds == 4.5)
            #expect(try await ledger.sound(jobID: ids["door"]!, take: 2)?.summary?.seconds == 3)
            try await ledger.recordSound(SoundSummary(seconds: 2.5, peaks: [7]), jobID: ids["door"]!, take: 2)
            #expect(
                try await ledger.sound(jobID: ids["door"]!, take: 2)?.summary == SoundSummary(seconds: 2.5, peaks: [7]))

            // status counts them, and the per-take export names each verdict.
            let status = try #require(try await ledger.status(batch: "b").first)
            #expect(status.sounds == VerdictCounts(kept: 1, rejected: 1, unreviewed: 1))
            var verdicts: [String] = []
            try await ledger.forEachReportLine(ReportQuery(batch: "b"), metadataKeys: []) { line in
                if case let .text(verdict) = line.value("verdict") {
                    verdicts.append(verdict)
                } else {
                    verdicts.append("")
                }
            }
            #expect(verdicts == ["rejected", "kept", "", "", ""])
        }
    }

    /// `mark`, `drop` and `adopt` name a row as a person does (its id, or its line), one rule
    /// for the three, on both backends.
    @Test(arguments: Backend.allCases)
    func aRowNamedOnTheCommandLineIsFoundOneWay(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            let (_, ids) = try await batch(ledger, folder)
            #expect(try await ledger.namedRow("4", batch: "b").row.jobs.map(\.jobID) == [ids["wind"]!])
            // door has two takes: none is picked for the person, who is told them.
            await #expect(
                throws: MarkError.whichTake(row: "door", takes: ["1 (rejected)", "2 (not reviewed)"])
            ) {
                try await ledger.mark(.kept, row: "door", batch: "b")
            }
            #expect(try await ledger.mark(.kept, row: "door", batch: "b", take: 2) == 2)
            #expect(try await ledger.mark(nil, row: "2", batch: "b", take: 1) == 1)
            await #expect(throws: MarkError.noSuchTake(row: "door", take: 3, takes: [1, 2])) {
                try await ledger.mark(.kept, row: "door", batch: "b", take: 3)
            }
            await #expect(throws: MarkError.notASound(row: "wind", take: 1, state: .failed)) {
                try await ledger.mark(.rejected, row: "wind", batch: "b")
            }
            await #expect(throws: RowNameError.noSuchRow(batch: "b", name: "gate")) {
                try await ledger.mark(.kept, row: "gate", batch: "b")
            }
            let plan = try await ledger.planDrop(batch: "b", states: [.pending], rows: ["école"], lastFeed: false)
            #expect(plan.going.map(\.rowKey) == ["école"] && plan.kept.isEmpty)
            await #expect(
                throws: DropRowsNotFound(batch: "b", states: [.pending], lastFeed: false, rows: ["door", "9"])
            ) {
                try await ledger.planDrop(batch: "b", states: [.pending], rows: ["door", "école", "9"], lastFeed: false)
            }
        }
    }
}
