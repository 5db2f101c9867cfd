import Foundation
import GRDB
import SoundbatchSandbox
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

/// A batch remembers how it is run: real `soundbatch` processes, one after another, against
/// a sandbox on loopback.
@Suite(.serialized) struct LifecycleTests {
    let folder = try! TemporaryFolder()

    func writeJobs(_ count: Int) throws -> String { try folder.writeJobs(count, prompt: "lifecycle sound") }

    func states() throws -> [String: Int] { try folder.jobStates() }

    func quickSandbox() -> SandboxConfiguration {
        .with {
            $0.submitsPerMinute = nil
            $0.generationTime = .milliseconds(350)
            $0.eta = .true
            $0.generationFailureRate = 0
        }
    }

    @Test func resumeWithOnlyTheBatchCarriesOnWhereAndAsTheBatchWasRun() async throws {
        let csv = try writeJobs(6)
        try await Sandbox.withRunning(quickSandbox()) { url, sandbox in
            // The budget stops the first run after a few jobs (each is estimated at 2 credits).
            let first = try Child(
                [
                    "run", csv, "--batch", "b", "--base-url", url, "--rate", "50/s", "--wait", "--download", "sounds",
                    "--max-credits", "5", "--ledger", "ledger.sqlite"
                ], in: folder, environment: ["MUSICGPT_API_KEY": "k"])
            #expect(try await first.exitStatus() == 2, "\(first.stderr)")
            #expect(first.stderr.contains("soundbatch resume --batch b --max-credits N"))
            let sentFirst = await sandbox.acceptedTasks.count
            #expect(sentFirst > 0 && sentFirst < 6)

            // Told nothing but the batch and a new budget, with $MUSICGPT_BASE_URL pointing
            // elsewhere: same service, same pace, waits, saves in the same folder.
            for (index, environment) in [["MUSICGPT_BASE_URL": "http://127.0.0.1:9/elsewhere"], [:]].enumerated() {
                let resumed = try Child(
                    ["resume", "--batch", "b", "--max-credits", "1000", "--ledger", "ledger.sqlite"], in: folder,
                    environment: environment.merging(["MUSICGPT_API_KEY": "k"]) { $1 }, name: "resume\(index)")
                #expect(try await resumed.exitStatus() == 0, "\(resumed.stderr)")
            }
            #expect(await sandbox.acceptedTasks.count == 6)
            #expect(try states() == ["completed": 6])
            let saved = try FileManager.default.contentsOfDirectory(atPath: folder.file("sounds"))
            #expect(saved.filter { $0.hasSuffix(".wav") }.count == 6)

            let status = try Child(["status", "--batch", "b", "--ledger", "ledger.sqlite"], in: folder, name: "status")
            #expect(try await status.exitStatus() == 0)
            #expect(status.stdout.contains("runs at \(url)") && status.stdout.contains("saves them in"))
            #expect(status.stdout.contains("at most 1000.00 credits"), "an option given again is kept")
        }
    }

    @Test func aBatchWithTasksAtAServiceRefusesAnother() async throws {
        let csv = try writeJobs(2)
        try await Sandbox.withRunning(quickSandbox()) { url, sandbox in
            let first = try Child(
                ["run", csv, "--batch", "b", "--base-url", url, "--ledger", "ledger.sqlite"], in: folder,
                environment: ["MUSICGPT_API_KEY": "k"])
            #expect(try await first.exitStatus() == 0, "\(first.stderr)")
            let elsewhere = try Child(
                ["track", "--batch", "b", "--base-url", "http://127.0.0.1:9/other", "--ledger", "ledger.sqlite"],
                in: folder, environment: ["MUSICGPT_API_KEY": "k"], name: "elsewhere")
            #expect(try await elsewhere.exitStatus() == 64)
            #expect(elsewhere.stderr.contains("has tasks at \(url)"), "\(elsewhere.stderr)")
            let sandboxed = try Child(
                ["resume", "--batch", "b", "--sandbox", "--ledger", "ledger.sqlite"], in: folder, name: "sandboxed")
            #expect(try await sandboxed.exitStatus() == 64)
            #expect(await sandbox.acceptedTasks.count == 2)
        }
    }

    @Test func aSandboxBatchIsResumedAndTrackedByLaterProcesses() async throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("jobs.example.csv").path
        let first = try Child(
            ["run", example, "--sandbox", "--max-credits", "5", "--ledger", "ledger.sqlite"], in: folder)
        #expect(try await first.exitStatus() == 2, "\(first.stderr)")
        let resumed = try Child(
            ["resume", "--batch", "jobs.example", "--max-credits", "1000", "--ledger", "ledger.sqlite"], in: folder,
            name: "resume")
        #expect(try await resumed.exitStatus() == 0, "\(resumed.stderr)")
        #expect(try states()["submitted"] == 12)
        // A third process, with no key and no --sandbox, finds every task of the first two.
        let tracked = try Child(
            ["track", "--batch", "jobs.example", "--download", "sounds", "--ledger", "ledger.sqlite"], in: folder,
            name: "track")
        let status = try await tracked.exitStatus(within: .seconds(90))
        let done = try states()
        #expect(done["completed", default: 0] + done["generation_failed", default: 0] == 12, "\(tracked.stderr)")
        #expect(status == (done["completed"] == 12 ? 0 : 1))
        let saved = try FileManager.default.contentsOfDirectory(atPath: folder.file("sounds"))
        #expect(saved.count == done["completed"])
    }

    @Test func messagesNameRowsNotLedgerNumbers() async throws {
        let csv = try folder.write("rows.csv", "prompt\na door creaks open slowly in an old empty house\nrain\n")
        let child = try Child(
            ["run", csv, "--sandbox", "--wait", "--download", "sounds", "--verbose", "--ledger", "ledger.sqlite"],
            in: folder)
        let status = try await child.exitStatus()
        // Exit 1 only if the sandbox failed a generation, and said which row's.
        #expect(status == (child.stderr.contains("could not generate") ? 1 : 0), "\(child.stderr)")
        // Rows without an id are named by file, line and the start of the prompt, in every
        // line about them (each saved file is one, with --verbose).
        #expect(child.stderr.contains(#"rows.csv:2 "a door creaks open slowly in an…": saved"#), "\(child.stderr)")
        #expect(child.stderr.contains(#"rows.csv:3 "rain""#))
        #expect(child.stderr.range(of: "job [0-9]", options: .regularExpression) == nil, "\(child.stderr)")
        #expect(child.stderr.range(of: "~[0-9a-f]{8}", options: .regularExpression) == nil)  // no content key
    }

    @Test func aRowIsNamedByItsIDElseByItsPlaceInTheFile() {
        #expect(
            RowName.of(rowKey: "door-1", keyedByContent: false, sourceFile: "/x/b.csv", line: 4, prompt: "door")
                == "door-1")
        #expect(
            RowName.of(rowKey: "~abc-1", keyedByContent: true, sourceFile: "/x/b.csv", line: 4, prompt: "door")
                == #"b.csv:4 "door""#)
    }
}
