import Foundation
import GRDB
import SoundbatchSandbox
import SoundbatchTesting
import Testing

/// The ledger under stress, with real processes: a second sender, a full disk, a ledger
/// deleted mid-run.
@Suite(.serialized) struct LedgerStressTests {
    let folder = try! TemporaryFolder()

    func writeJobs(_ count: Int) throws -> String {
        try folder.write(
            "b.csv", "id,prompt\n" + (1...count).map { "j\($0),stress sound \($0)" }.joined(separator: "\n"))
    }

    func integrity(_ path: String) throws -> String? {
        try DatabaseQueue(path: path).read { try String.fetchOne($0, sql: "PRAGMA integrity_check") }
    }

    var key: [String: String] { ["MUSICGPT_API_KEY": "k"] }

    @Test func aSecondSenderOnTheSameLedgerIsRefused() async throws {
        let csv = try writeJobs(30)
        try await Sandbox.withRunning(
            .with {
                $0.submitsPerMinute = nil
                $0.latency = .milliseconds(300)
            }
        ) { url, sandbox in
            let send = [
                "--batch", "b", "--base-url", url, "--ledger", "ledger.sqlite", "--rate", "10/s", "--concurrency", "2"
            ]
            let first = try Child(["run", csv] + send, in: folder, environment: key, name: "first")
            #expect(try await eventually { await sandbox.acceptedTasks.count >= 1 })
            let second = try Child(["resume"] + send, in: folder, environment: key, name: "second")
            #expect(try await second.exitStatus() == 64)
            #expect(second.stderr.contains("another soundbatch (process \(first.process.processIdentifier))"))
            first.signal(SIGINT)
            #expect(try await first.exitStatus() == 2)
            let third = try Child(["resume"] + send, in: folder, environment: key, name: "third")
            #expect(try await third.exitStatus() == 0, "\(third.stderr)")
            let tasks = await sandbox.acceptedTasks
            #expect(tasks.count == 30 && Set(tasks.map(\.prompt)).count == 30)
        }
    }

    @Test func aFullDiskIsAClearErrorAndLeavesASoundLedger() async throws {
        let csv = try writeJobs(20_000)
        // 4,000 blocks of 512 bytes: room for a new ledger (its migrations pass through the
        // WAL: 1.1 MB in all since v14), not for the feed.
        let result = try await program(
            [
                "-c", "ulimit -f 4000; exec \"$0\" run \"$1\" --dry-run --ledger ledger.sqlite",
                soundbatchExecutable.path, csv
            ], executable: URL(fileURLWithPath: "/bin/sh"), in: folder.path)
        let message = result.stderr
        #expect(result.status == 74, "\(message)")
        #expect(message.contains("the ledger failed"), "\(message)")
        #expect(try integrity(folder.file("ledger.sqlite")) == "ok")
        let jobs = try await DatabaseQueue(path: folder.file("ledger.sqlite")).read {
            try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM jobs")
        }
        #expect(jobs == 0, "a failed feed records nothing")
    }

    @Test func aLedgerDeletedMidRunStopsTheSending() async throws {
        let csv = try writeJobs(40)
        try await Sandbox.withRunning(
            .with {
                $0.submitsPerMinute = nil
                $0.latency = .milliseconds(100)
            }
        ) { url, sandbox in
            let child = try Child(
                [
                    "run", csv, "--batch", "b", "--base-url", url, "--ledger", "ledger.sqlite",
                    "--rate", "20/s", "--concurrency", "2"
                ], in: folder, environment: key)
            #expect(try await eventually { await sandbox.acceptedTasks.count >= 3 })
            for suffix in ["", "-wal", "-shm"] { unlink(folder.file("ledger.sqlite" + suffix)) }
            let sentWhenDeleted = await sandbox.acceptedTasks.count
            #expect(try await child.exitStatus() == 74)
            #expect(child.stderr.contains("deleted or replaced"), "\(child.stderr)")
            // Only requests already in flight may have gone after the file disappeared.
            #expect(await sandbox.acceptedTasks.count <= sentWhenDeleted + 2 + 1)
        }
    }

    @Test func aReadOnlyLedgerIsAClearErrorAndStaysSound() async throws {
        try await soundbatch(["run", try writeJobs(3), "--dry-run", "--ledger", "ledger.sqlite"], in: folder.path)
        let ledger = folder.file("ledger.sqlite")
        // Root ignores file modes; the immutable flag holds even for root (ext4 and most file systems).
        let lock = Process()
        lock.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
        lock.arguments = ["+i", ledger]
        lock.standardError = Pipe()
        guard (try? lock.run()) != nil else { return }
        lock.waitUntilExit()
        guard lock.terminationStatus == 0 else { return }  // this file system cannot make it read-only
        defer {
            let unlock = Process()
            unlock.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
            unlock.arguments = ["-i", ledger]
            try? unlock.run()
            unlock.waitUntilExit()
        }
        let result = try await soundbatch(
            ["run", folder.file("b.csv"), "--dry-run", "--ledger", "ledger.sqlite"], in: folder.path)
        #expect(result.status == 74)
        #expect(result.stderr.contains("read-only"), "\(result.stderr)")
        #expect(try integrity(ledger) == "ok")
    }
}
