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

        func status(taskID: String) async -> StatusOutcome {
            let now = TestClock<Duration>.Instant().duration(to: clock.now)
            looks.withLock { $0.append(now) }
            return .found(RemoteStatus(taskID: taskID, status: status))
        }
    }

    /// Runs the tracker on one job submitted at `start` with `eta`, advancing the test
    /// clock a second at a time, but only while the tracker waits on it.
    func track(
        eta: Int?, status: String, giveUpAfter: Duration
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
        let service = ScriptedService(clock: clock, status: status)
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
}
