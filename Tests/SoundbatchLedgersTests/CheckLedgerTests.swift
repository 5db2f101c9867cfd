import Foundation
import SoundbatchTesting
import Testing

@testable import SoundbatchAudio
@testable import SoundbatchCore

/// What checks keep in the ledger and read from it (`CheckLedger`), on both backends alike,
/// over the review's batch: door (take 1 rejected, take 2 completed), rain, wind (failed).
@Suite struct CheckLedgerTests {
    /// A check of a sound as loud as `level` whose fingerprint is `print`, found `findings`.
    func check(_ findings: Set<Finding>, print: [UInt8] = [100, 60, 100, 60], level: Double = -20) -> TakeCheck {
        TakeCheck(
            measurement: SoundMeasurement(
                seconds: 3, peaks: [0, 255], integrated: level, loudnessRange: 2, samplePeak: -3, truePeak: 3.7,
                overs: 0, flatRuns: 0, dcOffset: nil, leadingSilence: 0, trailingSilence: 0, longestGap: 0,
                fingerprint: print),
            findings: findings)
    }

    @Test(arguments: Backend.allCases)
    func aTakeIsADuplicateOfAnEarlierOneWhicheverIsCheckedFirst(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            let (batchID, ids) = try await ReviewLedgerTests().batch(ledger, folder)
            let settings = CheckSettings()
            // The later take is checked first: nothing to hold it against yet.
            let second = try await ledger.recordCheck(
                check([]), settings: settings, jobID: ids["door"]!, take: 2, sha256: "x", now: Date())
            #expect(second.findings.isEmpty)
            // The earlier one, checked now, is the same sound: the later take is its duplicate.
            let first = try await ledger.recordCheck(
                check([]), settings: settings, jobID: ids["door"]!, take: 1, sha256: "x", now: Date())
            #expect(first.findings.isEmpty)
            // Another row's take with the same print is no duplicate: takes of one row only.
            try await ledger.recordCheck(
                check([.clipped]), settings: settings, jobID: ids["rain"]!, take: 1, sha256: "x", now: Date())
            #expect(
                try await ledger.findingCounts(batch: "b")
                    == ["b": CheckCounts(checked: 2, findings: [.duplicate: 1, .clipped: 1])])

            let page = try await ledger.reviewRows(batchID: batchID, ReviewQuery(flagged: true))
            #expect(page.rows.map(\.name) == ["door", "rain"])
            let door = try #require(page.rows.first)
            #expect(door.takes.map(\.findings) == [[], ["same as take 1"]])
            #expect(door.takes.map(\.loudness) == [-20, -20])
            let rain = try #require(page.rows.last?.takes.last)
            #expect(rain.findings == ["clipped at +3.7 dBTP"] && rain.truePeak == 3.7)
            let clean = try await ledger.reviewRows(batchID: batchID, ReviewQuery(flagged: false))
            #expect(clean.rows.map(\.name) == ["wind", "école"])

            // Checked again, the later take alone, as louder: no longer the same sound.
            let louder = try await ledger.recordCheck(
                check([], print: [140, 60, 140, 60]), settings: settings, jobID: ids["door"]!, take: 2, sha256: "x",
                now: Date())
            #expect(louder.findings.isEmpty && louder.duplicateOf == nil)
            #expect(
                try await ledger.findingCounts(batch: "b") == ["b": CheckCounts(checked: 2, findings: [.clipped: 1])])
        }
    }

    @Test(arguments: Backend.allCases)
    func aSoundIsDueForACheckUntilCheckedWithTheseThresholdsAndThisFile(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            let (batchID, ids) = try await ReviewLedgerTests().batch(ledger, folder)
            let settings = CheckSettings()
            let saved = try await ledger.checkTargets(batchID: batchID, .all)
            #expect(saved.map { "\($0.row) \($0.take)" } == ["door 1", "door 2", "rain 1"])
            #expect(try await ledger.checkTargets(batchID: batchID, .due(settings)).count == 3)
            for target in saved {
                try await ledger.recordCheck(
                    check([]), settings: settings, jobID: target.jobID, take: target.take, sha256: target.sound.sha256,
                    now: Date())
            }
            #expect(try await ledger.checkTargets(batchID: batchID, .due(settings)).isEmpty)
            var stricter = settings
            stricter.gapOver = 3
            #expect(try await ledger.checkTargets(batchID: batchID, .due(stricter)).count == 3)
            // The file saved again (another SHA-256): due again, that one alone.
            try await ledger.recordDownload(
                jobID: ids["rain"]!, path: "/s/r1.wav", size: 5, sha256: "y", sound: nil, storing: false, now: Date())
            #expect(try await ledger.checkTargets(batchID: batchID, .due(settings)).map(\.row) == ["rain"])
        }
    }

    @Test(arguments: Backend.allCases)
    func theFlaggedJobsAreThoseWhoseLatestTakeAFindingWasMadeOf(_ backend: Backend) async throws {
        try await backend.withLedger { ledger, folder in
            let (batchID, ids) = try await ReviewLedgerTests().batch(ledger, folder)
            let settings = CheckSettings()
            // door's earlier take was silent, its latest is right; rain is clipped.
            try await ledger.recordCheck(
                check([.silent], print: [0, 0]), settings: settings, jobID: ids["door"]!, take: 1, sha256: "x",
                now: Date())
            try await ledger.recordCheck(
                check([]), settings: settings, jobID: ids["door"]!, take: 2, sha256: "x", now: Date())
            try await ledger.recordCheck(
                check([.clipped]), settings: settings, jobID: ids["rain"]!, take: 1, sha256: "x", now: Date())
            let candidates = try await ledger.retryCandidates(batchID: batchID, states: JobState.finished)
            #expect(candidates.filter { $0.isFlagged([]) }.map(\.row) == ["rain"])
            #expect(candidates.filter { $0.isFlagged([.silent]) }.isEmpty)
            #expect(candidates.first { $0.row == "door" }?.flaggedEarlierTakes == 1)

            let run = BatchRun(ledger: ledger, batch: "b", stop: StopSignal(), logger: quietLogger())
            #expect(try await run.planRetry(states: nil, rows: [], flagged: []).jobs.map(\.row) == ["rain"])
            #expect(try await run.planRetry(states: nil, rows: [], flagged: [.short]).jobs.isEmpty)

            #expect(try await ledger.rejectFlagged(batch: "b", kinds: [.silent]) == 0)
            #expect(try await ledger.rejectFlagged(batch: "b", kinds: []) == 1)
            let rain = try await ledger.reviewRows(batchID: batchID, ReviewQuery(search: "rain")).rows.first
            #expect(rain?.takes.last?.verdict == .rejected)
        }
    }
}
