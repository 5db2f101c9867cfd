import Crypto
import Foundation
import SoundbatchCore
import SoundbatchSandbox
import SoundbatchTesting
import Testing

/// A team on one PostgreSQL ledger, two working folders standing for two machines
/// (`SOUNDBATCH_MACHINE`) that share nothing but the database: a sound saved by one is
/// heard, exported and saved by the other from the ledger, never fetched again.
extension ReviewBrowserTests {
    static let teamSheet = csvText([["id", "prompt", "audio_length"]] + (1...3).map { ["r\($0)", "Sound \($0)", "2"] })

    @Test func aSoundSavedOnOneMachineIsHeardExportedAndSavedOnAnother() async throws {
        guard let (script, screenshots) = try await browserScript("plays.py") else { return }
        try await Backend.postgres.withCommandLedger { ledger, machineB, location in
            let machineA = folder
            let csv = try machineA.write("sheet.csv", Self.teamSheet)
            try await Sandbox.withRunning(.quick { $0.audioFormat = .mp3 }) { url, _ in
                let run = try Child(
                    [
                        "run", csv, "--batch", "sfx", "--takes", "2", "--base-url", url, "--wait", "--download",
                        "sounds", "--ledger", location
                    ], in: machineA, environment: Self.machine("A"), name: "run")
                #expect(try await run.exitStatus() == 0, "\(run.stderr)")
            }
            // The service is gone with its audio URLs: whatever B gets, it gets from the ledger.
            let review = try Child(
                ["review", "--batch", "sfx", "--listen", "127.0.0.1:0", "--ledger", location], in: machineB,
                environment: Self.machine("B"), name: "review")
            #expect(try await eventually { review.stdout.contains("?token=") }, "\(review.stderr)")
            let line = try #require(review.stdout.split(separator: "\n").first { $0.contains("?token=") })
            let browser = try await run(
                ["python3", script, String(line.split(separator: " ").last!), screenshots, "6"], within: .seconds(240))
            #expect(browser.status == 0, "\(browser.output)\n\(review.stderr)")
            review.signal(SIGINT)
            #expect(try await review.exitStatus() == 0, "\(review.stderr)")

            let export = ["export", "--batch", "sfx", "--to", "library", "--ledger", location]
            let exportB = try await soundbatch(export, in: machineB.path, environment: Self.machine("B"))
            #expect(
                exportB.status == 0 && exportB.stdout.contains("6 files written"), "\(exportB.stdout)\(exportB.stderr)")
            let track = try await soundbatch(
                ["track", "--batch", "sfx", "--download", "sounds", "--ledger", location], in: machineB.path,
                environment: Self.machine("B"))
            #expect(track.status == 0, "\(track.stdout)\(track.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: machineB.file("sounds")).count == 6)

            // A's paths are A's still, B's are beside them, every file whole; A exports from its own.
            let rows = try await rawRows(
                ledger,
                """
                SELECT j.download_path, j.download_machine, j.download_sha256, c.path
                FROM jobs j JOIN sound_copies c ON c.job_id = j.id AND c.take = j.take AND c.machine = 'B'
                """)
            #expect(rows.count == 6)
            for row in rows {
                let (saved, savedBy, copy): (String, String, String) = (
                    try row["download_path"], try row["download_machine"], try row["path"]
                )
                #expect(saved.hasPrefix(machineA.path + "/sounds/") && savedBy == "A")
                #expect(copy.hasPrefix(machineB.path + "/sounds/"))
                #expect(try Self.sha256(of: copy) == row["download_sha256"])
            }
            let exportA = try await soundbatch(export, in: machineA.path, environment: Self.machine("A"))
            #expect(
                exportA.status == 0 && exportA.stdout.contains("6 files written"), "\(exportA.stdout)\(exportA.stderr)")
        }
    }

    /// A kill -9 while A saves sounds, or while B writes them from the ledger, leaves no half
    /// sound in the ledger or on either disk; each carries on to every sound.
    @Test func aKillWhileSavingLeavesNoHalfSoundInTheLedgerOrOnDisk() async throws {
        try await Backend.postgres.withCommandLedger { ledger, machineB, location in
            let machineA = folder
            let csv = try machineA.write(
                "sheet.csv", csvText([["id", "prompt"]] + (1...60).map { ["r\($0)", "Sound \($0)"] }))
            try await Sandbox.withRunning(.quick()) { url, _ in
                let arguments = [
                    "--batch", "sfx", "--base-url", url, "--rate", "20/s", "--wait", "--download", "sounds", "--ledger",
                    location
                ]
                // A killed runner's jobs are free once its lease runs out: 2 s here, not 30.
                let a = Self.machine("A").merging(["SOUNDBATCH_LEASE_SECONDS": "2"]) { $1 }
                let run = try Child(["run", csv] + arguments, in: machineA, environment: a, name: "run")
                #expect(try await eventually { try await Self.count(ledger, "sounds") >= 5 })
                run.signal(SIGKILL)
                _ = try await run.exitStatus()
                try await Self.expectWhole(ledger, machine: "A", folder: machineA)
                try await Task.sleep(for: .seconds(2.5))
                let resume = try await soundbatch(
                    ["resume", "--resend-in-doubt"] + arguments, in: machineA.path, environment: a)
                #expect(resume.status == 0, "\(resume.stdout)\(resume.stderr)")
            }
            // Every job's sound saved, and each sound kept once (two tasks may make the same bytes).
            let saved = try #require(
                try await rawRows(
                    ledger,
                    """
                    SELECT COUNT(*) AS jobs, COUNT(DISTINCT download_sha256) AS sounds FROM jobs
                    WHERE download_path IS NOT NULL
                    """
                ).first)
            let kept = try await Self.count(ledger, "sounds")
            #expect(try saved["jobs"] == 60 && kept == saved["sounds"])
            try await Self.expectWhole(ledger, machine: "A", folder: machineA)

            let track = ["track", "--batch", "sfx", "--download", "sounds", "--ledger", location]
            let b = Self.machine("B").merging(["SOUNDBATCH_LEASE_SECONDS": "2"]) { $1 }
            let first = try Child(track, in: machineB, environment: b, name: "track")
            #expect(try await eventually { try await Self.count(ledger, "sound_copies") >= 5 })
            first.signal(SIGKILL)
            _ = try await first.exitStatus()
            try await Self.expectWhole(ledger, machine: "B", folder: machineB)
            try await Task.sleep(for: .seconds(2.5))
            let again = try await soundbatch(track, in: machineB.path, environment: b)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try await Self.count(ledger, "sound_copies") == 60)
            try await Self.expectWhole(ledger, machine: "B", folder: machineB)
        }
    }

    static func machine(_ name: String) -> [String: String] { ["MUSICGPT_API_KEY": "k", "SOUNDBATCH_MACHINE": name] }

    /// Every sound the ledger keeps is whole (its chunks are its size and its SHA-256), and
    /// the machine's download folder holds only whole sounds, each as the ledger says.
    static func expectWhole(_ ledger: any LedgerStore, machine: String, folder: TemporaryFolder) async throws {
        let torn = try await rawRows(
            ledger,
            """
            SELECT s.sha256 FROM sounds s LEFT JOIN sound_chunks c ON c.sha256 = s.sha256
            GROUP BY s.sha256, s.size
            HAVING COALESCE(SUM(length(c.data)), 0) <> s.size
                OR encode(sha256(COALESCE(string_agg(c.data, ''::bytea ORDER BY c.seq), ''::bytea)), 'hex') <> s.sha256
            """)
        #expect(torn.isEmpty, "sounds kept in part: \(torn.count)")
        var known: [String: String] = [:]
        for row in try await rawRows(
            ledger,
            """
            SELECT download_path AS path, download_sha256 AS sha256 FROM jobs WHERE download_machine = '\(machine)'
            UNION ALL SELECT path, sha256 FROM sound_copies WHERE machine = '\(machine)'
            """)
        {
            known[try row["path"]] = try row["sha256"]
        }
        let sounds = folder.file("sounds")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: sounds)) ?? [] {
            // A file renamed into place just before the kill, not yet recorded, is whole all the same.
            #expect(!name.hasPrefix("."), "a file left half-written: \(sounds)/\(name)")
        }
        for (path, sha256) in known { #expect(try Self.sha256(of: path) == sha256, "\(path)") }
    }

    static func count(_ ledger: any LedgerStore, _ table: String) async throws -> Int {
        try await rawRows(ledger, "SELECT COUNT(*) AS n FROM \(table)").first?["n"] ?? 0
    }

    static func sha256(of path: String) throws -> String {
        let data = try #require(FileManager.default.contents(atPath: path), "\(path) cannot be read")
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}
