import Foundation
import GRDB
import SoundbatchSandbox
import SoundbatchTesting
import Testing

/// Every sound checked as it lands: the sandbox's defects (`--defects`) made on purpose, sent
/// as MP3 over HTTP, saved, measured and found by a real `soundbatch`, then acted on.
@Suite(.serialized) struct CheckTests {
    let folder = try! TemporaryFolder()

    /// A sheet of `rows` rows, each asking for 3 s.
    func sheet(_ rows: Int) throws -> String {
        try folder.write(
            "sheet.csv",
            csvText([["id", "prompt", "audio_length"]] + (1...rows).map { ["r\($0)", "Sound number \($0)", "3"] }))
    }

    func sandbox(
        defects share: Double, kinds: [SandboxConfiguration.Defect] = SandboxConfiguration.Defect.allCases
    )
        -> SandboxConfiguration
    {
        .quick {
            $0.audioFormat = .mp3
            $0.defectShare = share
            $0.defectKinds = kinds
        }
    }

    /// `soundbatch` against the sandbox this process serves.
    func run(_ arguments: [String], url: String) async throws -> ProcessResult {
        try await SoundbatchTesting.soundbatch(
            arguments + ["--base-url", url, "--ledger", "ledger.sqlite"], in: folder.path,
            environment: ["MUSICGPT_API_KEY": "k"])
    }

    func soundbatch(_ arguments: [String]) async throws -> ProcessResult {
        try await SoundbatchTesting.soundbatch(arguments + ["--ledger", "ledger.sqlite"], in: folder.path)
    }

    /// Each job's latest take, from `report --jobs --format json`: task ID to (row, take, findings).
    func reportLines() async throws -> [String: (row: String, take: Int, findings: [String])] {
        let report = try await soundbatch(["report", "--jobs", "--batch", "sfx", "--format", "json"])
        let object = try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any]
        let jobs = try #require(object?["jobs"] as? [[String: Any]], "\(report.stdout)\(report.stderr)")
        var lines: [String: (row: String, take: Int, findings: [String])] = [:]
        for job in jobs {
            guard let task = job["task_id"] as? String else { continue }
            lines[task] = (
                job["row_key"] as? String ?? "", job["take"] as? Int ?? 0, try #require(job["findings"] as? [String])
            )
        }
        return lines
    }

    /// What the findings of each of the sandbox's tasks should be: its defect's, for a
    /// duplicate on the later take of the two alike (the earlier one is the original); none
    /// for a sound made right.
    func expectedFindings(
        _ tasks: [SandboxTask], lines: [String: (row: String, take: Int, findings: [String])]
    )
        -> [String: [String]]
    {
        var expected: [String: [String]] = [:]
        for task in tasks { expected[task.taskID] = task.defect.map { $0 == .duplicate ? [] : [$0.rawValue] } ?? [] }
        for task in tasks where task.defect == .duplicate {
            guard let original = task.soundOf, let copy = lines[task.taskID], let first = lines[original] else {
                continue
            }
            expected[copy.take > first.take ? task.taskID : original] = ["duplicate"]
        }
        return expected
    }

    @Test(arguments: [nil] + SandboxConfiguration.Defect.allCases)
    func eachDefectOfTheSandboxIsFoundByItsNameAndASoundMadeRightByNone(
        _ kind: SandboxConfiguration.Defect?
    )
        async throws
    {
        let csv = try sheet(3)
        try await Sandbox.withRunning(sandbox(defects: kind == nil ? 0 : 1, kinds: kind.map { [$0] } ?? [])) {
            url, sandbox in
            let result = try await run(
                ["run", csv, "--batch", "sfx", "--takes", "2", "--wait", "--download", "sounds"], url: url)
            #expect(result.status == 0, "\(result.stderr)")
            let lines = try await reportLines()
            let tasks = await sandbox.acceptedTasks
            #expect(tasks.count == 6 && lines.count == 6)
            let expected = expectedFindings(tasks, lines: lines)
            for task in tasks {
                #expect(
                    lines[task.taskID]?.findings == expected[task.taskID],
                    "\(task.taskID): \(String(describing: task.defect))")
            }
            switch kind {
            case nil: #expect(expected.values.allSatisfy { $0.isEmpty })
            // Each row's first take is the original, its second a copy of it.
            case .duplicate?: #expect(expected.values.filter { $0 == ["duplicate"] }.count == 3)
            case let kind?: #expect(expected.values.allSatisfy { $0 == [kind.rawValue] })
            }
            let status = try await soundbatch(["status"])
            if let kind {
                let count = kind == .duplicate ? 3 : 6
                let words = kind == .dcOffset ? "dc offset" : kind.rawValue
                #expect(
                    status.stdout.contains("checks found, of 6 sounds checked: \(count) \(words);"), "\(status.stdout)")
            } else {
                #expect(status.stdout.contains("checks: 6 sounds checked, nothing found"), "\(status.stdout)")
            }
        }
    }

    @Test func aBatchWithDefectsIsFlaggedLeftOutOfTheLibraryAndItsFlaggedJobsAloneSentAgainOnceEach() async throws {
        let csv = try sheet(20)
        try await Sandbox.withRunning(sandbox(defects: 0.3)) { url, sandbox in
            let result = try await run(
                ["run", csv, "--batch", "sfx", "--takes", "2", "--wait", "--download", "sounds"], url: url)
            #expect(result.status == 0, "\(result.stderr)")
            let lines = try await reportLines()
            let tasks = await sandbox.acceptedTasks
            #expect(tasks.count == 40 && lines.count == 40)
            #expect(tasks.contains { $0.defect != nil }, "the sandbox made no defect at 0.3 of 40 sounds")
            let expected = expectedFindings(tasks, lines: lines)
            for task in tasks {
                #expect(
                    lines[task.taskID]?.findings == expected[task.taskID],
                    "\(task.taskID): \(String(describing: task.defect))")
            }
            let flagged = Set(expected.filter { !$0.value.isEmpty }.keys)

            // The library leaves the flagged sounds out, and says so.
            let export = try await soundbatch(["export", "--batch", "sfx", "--to", "library"])
            #expect(export.status == 0, "\(export.stderr)")
            let written = try FileManager.default.contentsOfDirectory(atPath: folder.file("library"))
                .filter { $0.hasSuffix(".wav") }
            #expect(written.count == 40 - flagged.count)
            #expect(export.stderr.contains("\(flagged.count) sound"), "\(export.stderr)")
            #expect(export.stderr.contains("--include-flagged"))

            // retry --flagged: those jobs, and no other, each once.
            let before = tasks.count
            let retry = try await run(["retry", "--batch", "sfx", "--flagged", "--yes"], url: url)
            #expect(retry.status == 0, "\(retry.stderr)")
            #expect(retry.stdout.contains("\(flagged.count) job"), "\(retry.stdout)")
            let after = await sandbox.acceptedTasks
            #expect(after.count == before + flagged.count)
            let sentAgain = after.dropFirst(before).map(\.prompt).sorted()
            #expect(sentAgain == flagged.compactMap { task in tasks.first { $0.taskID == task }?.prompt }.sorted())
            let ledger = try DatabaseQueue(path: folder.file("ledger.sqlite"))
            let earlierTakes = try await ledger.read { db in
                try String.fetchSet(db, sql: "SELECT task_id FROM takes")
            }
            #expect(earlierTakes == flagged)
        }
    }

    @Test func runRerollsAFlaggedSoundAsOftenAsAskedAndNoMore() async throws {
        let csv = try sheet(2)
        // Every sound comes out silent: each job is sent 1 + 2 times, then left flagged.
        try await Sandbox.withRunning(sandbox(defects: 1, kinds: [.silent])) { url, sandbox in
            let result = try await run(
                ["run", csv, "--batch", "sfx", "--wait", "--download", "sounds", "--reroll-flagged", "2"], url: url)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(await sandbox.acceptedTasks.count == 6)
            let takes = try await DatabaseQueue(path: folder.file("ledger.sqlite")).read { db in
                try Int.fetchAll(db, sql: "SELECT take FROM jobs ORDER BY id")
            }
            #expect(takes == [3, 3])
            #expect(result.stdout.contains("re-rolled 4"), "\(result.stdout)")

            // Resumed, it re-rolls none again: each job has had its two.
            let resume = try await run(["resume", "--batch", "sfx"], url: url)
            #expect(resume.status == 0, "\(resume.stderr)")
            #expect(await sandbox.acceptedTasks.count == 6)
        }
    }

    @Test func rerollsStayWithinMaxCredits() async throws {
        let csv = try sheet(3)
        // Each sound is estimated at 1.3 credits (3 s): 3 sent, then room for 1 re-roll under 5.5.
        try await Sandbox.withRunning(sandbox(defects: 1, kinds: [.clipped])) { url, sandbox in
            let result = try await run(
                [
                    "run", csv, "--batch", "sfx", "--wait", "--download", "sounds", "--reroll-flagged", "3",
                    "--max-credits", "5.5"
                ], url: url)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(await sandbox.acceptedTasks.count == 4)
            let pending = try await DatabaseQueue(path: folder.file("ledger.sqlite")).read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state <> 'completed'")
            }
            #expect(pending == 0)
        }
    }

    @Test func anUnreadableOrTruncatedSoundIsAFindingAndTheRestAreChecked() async throws {
        let csv = try sheet(4)
        try await Sandbox.withRunning(sandbox(defects: 0)) { url, _ in
            let result = try await run(
                ["run", csv, "--batch", "sfx", "--wait", "--download", "sounds", "--no-check"], url: url)
            #expect(result.status == 0, "\(result.stderr)")
        }
        let ledger = try DatabaseQueue(path: folder.file("ledger.sqlite"))
        #expect(try await ledger.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM checks") } == 0)
        // One cut to its first half (as a download that stopped would be), one written over
        // with bytes that are no sound.
        let files = try await ledger.read { db in
            try String.fetchAll(db, sql: "SELECT download_path FROM jobs ORDER BY id")
        }
        let whole = try Data(contentsOf: URL(fileURLWithPath: files[0]))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: files[0]))
        try Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: URL(fileURLWithPath: files[1]))

        let check = try await soundbatch(["check", "--batch", "sfx"])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains("4 sounds checked now"), "\(check.stdout)")
        #expect(check.stdout.contains("found: 2 unreadable"), "\(check.stdout)")
        let found = try await ledger.read { db in
            try String.fetchAll(db, sql: "SELECT c.findings FROM checks c JOIN jobs j ON j.id = c.job_id ORDER BY j.id")
        }
        #expect(found == ["unreadable", "unreadable", "", ""])
        let problems = try await ledger.read { db in
            try String.fetchAll(db, sql: "SELECT problem FROM checks WHERE problem IS NOT NULL ORDER BY job_id")
        }
        #expect(problems.first?.hasPrefix("cut short:") == true, "\(problems)")

        // Again: nothing is due; with --all, every one, with the same findings.
        let again = try await soundbatch(["check", "--batch", "sfx"])
        #expect(again.stdout.contains("0 sounds checked now, 4 checked already"), "\(again.stdout)")
        // A threshold changed: every sound is due again, and the batch keeps the threshold.
        let stricter = try await soundbatch(["check", "--batch", "sfx", "--silent-below", "-10"])
        #expect(stricter.stdout.contains("4 sounds checked now"), "\(stricter.stdout)")
        #expect(stricter.stdout.contains("2 silent"), "\(stricter.stdout)")
        let settings = try await ledger.read { db in try String.fetchOne(db, sql: "SELECT settings FROM batches") }
        #expect(settings?.contains("\"silentBelow\":-10") == true, "\(settings ?? "")")
    }

    @Test func badThresholdsAndFindingsAreRefusedNamingTheOption() async throws {
        let wrong = try await soundbatch(["retry", "--batch", "sfx", "--flagged", "clipt"])
        #expect(wrong.status == 64)
        #expect(wrong.stderr.contains("\"clipt\" is not one of silent, clipped, short, dc_offset"), "\(wrong.stderr)")
        let share = try await soundbatch(["check", "--batch", "sfx", "--short-below", "2"])
        #expect(share.status == 64)
        #expect(share.stderr.contains("--short-below"), "\(share.stderr)")
        let markBoth = try await soundbatch(["mark", "reject", "--batch", "sfx", "--job", "r1", "--flagged"])
        #expect(markBoth.status == 64)
        #expect(markBoth.stderr.contains("give one of them"), "\(markBoth.stderr)")
    }
}
