import Foundation
import GRDB
import SoundbatchSandbox
import SoundbatchTesting
import Testing

/// `soundbatch adopt`: a job in doubt settled by hand with a task found in the account,
/// confirmed at the service first; a task the ledger holds, or one the service does not
/// know, refused.
@Suite struct AdoptTests {
    let folder = try! TemporaryFolder()

    @Test func aJobInDoubtIsSettledWithATaskFromTheAccountAndOnlyOnce() async throws {
        let csv = try folder.write("doubt.csv", "id,prompt\ncreak,Old door creaks\n")
        // Every request makes its task, then the connection drops: the job is in doubt.
        let service = SandboxConfiguration.with {
            $0.submitsPerMinute = nil
            $0.looksPerMinute = nil
            $0.generationTime = .milliseconds(200)
            $0.generationFailureRate = 0
            $0.failureRate = 1
            $0.failureKinds = [.resetAfter]
            $0.apiKeys = ["k"]
        }
        try await Sandbox.withRunning(service) { url, sandbox in
            func soundbatch(_ arguments: [String], _ name: String, key: String = "k") async throws -> Child {
                let child = try Child(
                    arguments + ["--ledger", "doubt.sqlite"], in: folder, environment: ["MUSICGPT_API_KEY": key],
                    name: name)
                _ = try await child.exitStatus(within: .seconds(60))
                return child
            }
            let run = try await soundbatch(["run", csv, "--batch", "doubt", "--base-url", url], "run")
            #expect(run.process.terminationStatus == 2, "\(run.stderr)")
            let task = try #require(await sandbox.acceptedTasks.first)
            let made = task.taskID
            // Done when the sandbox's own end of its generation has passed.
            #expect(try await eventually { Date() >= task.finishesAt ?? task.createdAt })

            // A key the service refuses is said as such, and ends as a refused key does.
            let refused = try await soundbatch(
                ["adopt", "--batch", "doubt", "--job", "creak", "--task", made], "refused", key: "x")
            #expect(refused.process.terminationStatus == 77, "\(refused.stderr)")
            #expect(refused.stderr.contains("the API key was refused"), "\(refused.stderr)")

            let unknown = try await soundbatch(
                ["adopt", "--batch", "doubt", "--job", "creak", "--task", "no-such-task"], "unknown")
            #expect(unknown.process.terminationStatus == 64)
            #expect(unknown.stderr.contains("the service does not know task no-such-task"), "\(unknown.stderr)")

            let adopt = try await soundbatch(["adopt", "--batch", "doubt", "--job", "creak", "--task", made], "adopt")
            #expect(adopt.process.terminationStatus == 0, "\(adopt.stderr)")
            #expect(adopt.stdout.contains("doubt: creak settled with task \(made) (completed)"), "\(adopt.stdout)")
            let job = try DatabaseQueue(path: folder.file("doubt.sqlite")).read {
                try Row.fetchOne($0, sql: "SELECT state, task_id, request_in_doubt FROM jobs")!
            }
            #expect(job["state"] == "completed" && job["task_id"] == made && job["request_in_doubt"] == 0)

            let again = try await soundbatch(["adopt", "--batch", "doubt", "--job", "creak", "--task", made], "again")
            #expect(again.process.terminationStatus == 64)
            #expect(again.stderr.contains("is in the ledger already"), "\(again.stderr)")
        }
    }
}
