import Clocks
import Foundation
import GRDB
import Logging
import SoundbatchSandbox
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

/// An outage fails nothing: real `soundbatch` processes against a sandbox that goes down
/// on purpose (connections refused, then 503 pages), and the circuit breaker on a test clock.
@Suite(.serialized) struct OutageTests {
    let folder = try! TemporaryFolder()

    func writeJobs(_ count: Int) throws -> String { try folder.writeJobs(count, prompt: "outage sound") }

    func states() throws -> [String: Int] { try folder.jobStates() }

    func sandbox(up: Duration, down: Duration, errorPages: Duration) -> SandboxConfiguration {
        .with {
            $0.submitsPerMinute = nil
            $0.outage = .init(after: up, down: down, errorPages: errorPages)
        }
    }

    @Test func aRunRidesOutAnOutageAndFailsNoJob() async throws {
        let csv = try writeJobs(30)
        try await Sandbox.withRunning(sandbox(up: .seconds(1), down: .seconds(3), errorPages: .seconds(2))) {
            url, sandbox in
            let child = try Child(
                [
                    "run", csv, "--batch", "b", "--base-url", url, "--rate", "10/s", "--concurrency", "2",
                    "--max-attempts", "2", "--ledger", "ledger.sqlite"
                ], in: folder, environment: ["MUSICGPT_API_KEY": "k"])
            let status = try await child.exitStatus(within: .seconds(120))
            let counts = try states()
            // Only a request on the wire at the moment the service went away may be in doubt.
            let inDoubt = counts["in_doubt", default: 0]
            #expect(counts["failed"] == nil && counts["pending"] == nil, "\(counts)\n\(child.stderr)")
            #expect(counts["submitted", default: 0] + inDoubt == 30 && inDoubt <= 2)
            #expect(status == (inDoubt == 0 ? 0 : 2), "\(child.stderr)")
            #expect(
                child.stderr.components(separatedBy: "the service is not answering since").count == 2,
                "said once: \(child.stderr)")
            #expect(child.stderr.contains("the service answers again"))
            let prompts = await sandbox.acceptedTasks.map(\.prompt)
            #expect(Set(prompts).count == prompts.count, "nothing was paid for twice")
        }
    }

    @Test func aRunStopsAtTheOutageLimitWithItsJobsPending() async throws {
        let csv = try writeJobs(20)
        try await Sandbox.withRunning(sandbox(up: .milliseconds(500), down: .seconds(120), errorPages: .zero)) {
            url, _ in
            let child = try Child(
                [
                    "run", csv, "--batch", "b", "--base-url", url, "--rate", "10/s", "--concurrency", "2",
                    "--outage-limit", "3s", "--ledger", "ledger.sqlite"
                ], in: folder, environment: ["MUSICGPT_API_KEY": "k"])
            #expect(try await child.exitStatus(within: .seconds(60)) == 2)
            #expect(child.stderr.contains("stopped at --outage-limit"), "\(child.stderr)")
            #expect(child.stderr.contains("soundbatch resume --batch b"))
            let counts = try states()
            #expect(counts["failed"] == nil && counts["pending", default: 0] > 0, "\(counts)")
            #expect(
                counts["submitted", default: 0] + counts["pending", default: 0] + counts["in_doubt", default: 0] == 20)
        }
    }

    @Test func theBreakerOpensOnceProbesAtGrowingIntervalsAndCloses() async throws {
        let clock = TestClock<Duration>()
        var logger = Logger(label: "t")
        logger.logLevel = .critical
        let health = ServiceHealth(limit: .seconds(600), clock: clock, logger: logger)
        // One job's 5xx, again and again while others are answered, is that job's own.
        #expect(await health.record(.serverError("HTTP 500"), jobID: 1, sentAt: clock.now))
        #expect(await health.record(.answering, jobID: 2, sentAt: clock.now))
        #expect(await health.record(.serverError("HTTP 500"), jobID: 1, sentAt: clock.now))
        #expect(await health.isDown == false)
        // 5xx for two jobs with no good answer between: the service is out, no job's fault.
        #expect(await health.record(.serverError("HTTP 503"), jobID: 3, sentAt: clock.now) == false)
        #expect(await health.isDown)
        // Probes come 1, 2, 4 seconds apart while they fail.
        var probes: [Duration] = []
        let start = clock.now
        for _ in 0..<3 {
            let admitted = Task { try await health.admit() }
            try await untilSleeping(on: clock)
            await clock.run(timeout: .seconds(5))
            _ = try await admitted.value
            probes.append(start.duration(to: clock.now))
            #expect(await health.record(.unreachable("connection refused"), jobID: 9, sentAt: clock.now) == false)
        }
        #expect(probes == [.seconds(1), .seconds(3), .seconds(7)])
        // An answer to a request sent before the service went away says nothing of it now.
        await health.record(.answering, jobID: 8, sentAt: start.advanced(by: .seconds(-1)))
        #expect(await health.isDown)
        await health.record(.answering, jobID: 9, sentAt: clock.now)
        #expect(await health.isDown == false)
        #expect(try await health.admit() == .request)  // closed: at once
    }

    /// A probe that does not go after all (its job taken by another runner, or settled by a
    /// callback) hands its turn on at once: no request waits for an answer that never comes.
    @Test func aProbeThatDoesNotGoHandsItsTurnOn() async throws {
        let clock = TestClock<Duration>()
        var logger = Logger(label: "t")
        logger.logLevel = .critical
        let health = ServiceHealth(limit: .seconds(600), clock: clock, logger: logger)
        await health.record(.unreachable("connection refused"), jobID: 1, sentAt: clock.now)
        await clock.advance(by: .seconds(1))
        #expect(try await health.admit() == .probe)
        // The probe is out: the next caller waits for its answer...
        let next = Task { try await health.admit() }
        try await untilSleeping(on: clock)
        await clock.advance(by: .seconds(5))
        try await untilSleeping(on: clock)  // woken, and asleep again: the probe is still out
        #expect(await health.isDown)
        // ...until it is withdrawn: then the next caller probes, with no time passing.
        await health.withdraw(.probe)
        await clock.advance(by: .milliseconds(200))
        let watchdog = Task {  // a caller still waiting after 5 s fails the test, not hangs it
            try await Task.sleep(for: .seconds(5))
            next.cancel()
        }
        defer { watchdog.cancel() }
        #expect(try await next.value == .probe)
    }
}

/// Returns once a task sleeps on `clock` (its suspension is what a test waits for, never a
/// length of time).
func untilSleeping(on clock: TestClock<Duration>) async throws {
    while (try? await clock.checkSuspension()) != nil { try await Task.sleep(for: .milliseconds(1)) }
}
