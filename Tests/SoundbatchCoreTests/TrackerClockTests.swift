import Clocks
import Foundation
import GRDB
import Logging
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

/// The tracker's schedule on a test clock: the looks come exactly when they should.
@Suite struct TrackerClockTests {
    let folder = try! TemporaryFolder()

    /// Answers every look with the same status, in lower case, and notes when it was asked.
    struct ScriptedService: StatusChecker {
        let clock: TestClock<Duration>
        let looks = Locked<[Duration]>([])
        let status: String
        /// Answer 404, as for a task the service does not know.
        var notFound = false

        func status(taskID: String) async -> StatusOutcome {
            let now = TestClock<Duration>.Instant().duration(to: clock.now)
            looks.withLock { $0.append(now) }
            if notFound { return .retryable(status: 404, error: "HTTP 404: no such task", retryAfter: nil) }
            return .found(RemoteStatus(taskID: taskID, status: status))
        }
    }

    /// Runs the tracker on one job submitted at `start` with `eta`, advancing the test
    /// clock a second at a time, but only while the tracker waits on it.
    func track(
        eta: Int?, status: String, giveUpAfter: Duration, notFound: Bool = false
    ) async throws -> ([Duration], TrackCounters, SQLiteLedger) {
        let ledger = try SQLiteLedger(path: folder.file("l.sqlite"))
        _ = try ledger.ingest(CSVReader(path: folder.write("b.csv", "prompt\nx\n")), batch: "b", skipInvalid: false)
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        try await ledger.database.write { db in
            try db.execute(
                sql: "UPDATE jobs SET state = 'submitted', task_id = 't', submitted_at = ?, eta = ?",
                arguments: [Timestamp.string(start), eta])
        }
        let clock = TestClock<Duration>()
        let service = ScriptedService(clock: clock, status: status, notFound: notFound)
        var settings = TrackSettings()
        settings.giveUpAfter = giveUpAfter
        var logger = Logger(label: "t")
        logger.logLevel = .critical
        let tracker = Tracker(
            ledger: ledger, checker: service, settings: settings, clock: clock,
            wallClock: { start.addingTimeInterval(TestClock<Duration>.Instant().duration(to: clock.now).seconds) },
            stop: StopSignal(), logger: logger)
        let finished = Locked<TrackCounters?>(nil)
        let batchID = try await ledger.batchID(named: "b")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                let counters = try await tracker.run(batchID: batchID)
                finished.withLock { $0 = counters }
            }
            for _ in 0..<1000 where finished.value == nil {
                // Advance only while the tracker sleeps on the clock, not while it writes the ledger.
                while (try? await clock.checkSuspension()) != nil, finished.value == nil {
                    try await Task.sleep(for: .milliseconds(1))
                }
                await clock.advance(by: .seconds(1))
            }
            try await group.waitForAll()
        }
        return (service.looks.value, try #require(finished.value), ledger)
    }

    @Test func looksComeAtTheETAThenBackOffToAMinuteUntilGivenUp() async throws {
        let (looks, counters, ledger) = try await track(eta: 3, status: "in_progress", giveUpAfter: .seconds(200))
        #expect(looks == [3, 8, 18, 38, 78, 138, 198, 258].map { Duration.seconds($0) })
        #expect(counters.timedOut == 1 && counters.looks == 8)
        let state = try await ledger.database.read {
            try String.fetchOne($0, sql: "SELECT state || ' ' || remote_status FROM jobs")
        }
        #expect(state == "submitted in_progress")
    }

    @Test func anUnknownETAMeansTheFirstLookAfterTenSeconds() async throws {
        let (looks, counters, _) = try await track(eta: nil, status: "Completed", giveUpAfter: .seconds(600))
        #expect(looks == [.seconds(10)])
        #expect(counters.completed == 1)
    }

    @Test func aTaskAnswered404ForAMinuteIsUnknownToTheService() async throws {
        let (looks, counters, ledger) = try await track(
            eta: nil, status: "", giveUpAfter: .seconds(600), notFound: true)
        // 404s at 10, 15, 25 and 45 s are not yet a minute apart; at 85 s they are.
        #expect(looks == [10, 15, 25, 45, 85].map { Duration.seconds($0) })
        #expect(counters.remoteMissing == 1 && counters.timedOut == 0 && counters.stillRunning == 0)
        let job = try await ledger.database.read { try Row.fetchOne($0, sql: "SELECT state, last_error FROM jobs")! }
        #expect(job["state"] == "remote_missing")
        #expect((job["last_error"] as String).contains("404 5 times over 75 s"))
        let outcomes = try await ledger.database.read {
            try String.fetchAll($0, sql: "SELECT DISTINCT outcome FROM attempts")
        }
        #expect(outcomes == ["not_found"])
        #expect(RunOutcome.afterTracking(counters, stopReason: nil) == .someFailed)
    }
}
