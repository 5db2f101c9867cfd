import Clocks
import Foundation
import GRDB
import Logging
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

/// The tracker's schedule on a test clock: the looks come exactly when they should.
@Suite struct TrackerClockTests {
    let folder = try! TemporaryFolder()

    /// Answers each look with what `answer` says of the task at the clock's time (seconds),
    /// and notes who was looked at when.
    struct ScriptedService: StatusChecker {
        let clock: TestClock<Duration>
        let looks = Locked<[(task: String, at: Duration)]>([])
        let answer: @Sendable (_ taskID: String, _ now: Double) -> StatusOutcome

        func status(taskID: String) async -> StatusOutcome {
            let now = TestClock<Duration>.Instant().duration(to: clock.now)
            looks.withLock { $0.append((taskID, now)) }
            return answer(taskID, now.seconds)
        }
    }

    /// Runs the tracker over jobs `t0`, `t1`... submitted at the given seconds with the given
    /// etas, moving the test clock from one wake-up to the next, but only while the tracker
    /// waits on it. `whileAsleep` runs each time it does, with the clock's time.
    func trackBatch(
        _ jobs: [(submittedAt: Double, eta: Int?)], settings: TrackSettings = TrackSettings(),
        before: (SQLiteLedger) async throws -> Void = { _ in },
        whileAsleep: @escaping (SQLiteLedger, Double) async throws -> Void = { _, _ in },
        watch: (GenerationOutlook, Double) -> Void = { _, _ in },
        callbacksMayCome: (@Sendable (SQLiteLedger, _ start: Date) async throws -> Date?)? = nil,
        answer: @escaping @Sendable (_ taskID: String, _ now: Double) -> StatusOutcome
    ) async throws -> (looks: [(task: String, at: Duration)], counters: TrackCounters, ledger: SQLiteLedger) {
        let ledger = try SQLiteLedger(path: folder.file("l.sqlite"))
        let csv = "prompt\n" + jobs.indices.map { "sound \($0)\n" }.joined()
        _ = try await ledger.ingest(CSVReader(path: folder.write("b.csv", csv)), batch: "b", skipInvalid: false)
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        try await ledger.database.write { db in
            for (index, job) in jobs.enumerated() {
                try db.execute(
                    sql: "UPDATE jobs SET state = 'submitted', task_id = ?, submitted_at = ?, eta = ? WHERE id = ?",
                    arguments: [
                        "t\(index)", Timestamp.string(start.addingTimeInterval(job.submittedAt)), job.eta, index + 1
                    ])
            }
        }
        try await before(ledger)
        let clock = CountingClock()
        let service = ScriptedService(clock: clock.base, answer: answer)
        var logger = Logger(label: "t")
        logger.logLevel = .critical
        let seconds: @Sendable () -> Double = { TestClock<Duration>.Instant().duration(to: clock.now).seconds }
        let tracker = Tracker(
            ledger: ledger, checker: service, settings: settings, clock: clock,
            wallClock: { start.addingTimeInterval(seconds()) }, stop: StopSignal(), logger: logger)
        let finished = Locked<TrackCounters?>(nil)
        let batchID = try await ledger.batchID(named: "b")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var mayCome: (@Sendable () async throws -> Date?)?
                if let callbacksMayCome { mayCome = { @Sendable in try await callbacksMayCome(ledger, start) } }
                let counters = try await tracker.run(batchID: batchID, callbacksMayCome: mayCome)
                finished.withLock { $0 = counters }
            }
            for _ in 0..<10_000 where finished.value == nil {
                // Advance only while the tracker sleeps on the clock, not while a look it has
                // made is still being written: every look is in the ledger, and nothing has
                // moved for 10 ms (however slow a loaded machine makes the writes).
                var last: (Int, TestClock<Duration>.Instant?) = (-1, nil)
                while finished.value == nil {
                    let now = (service.looks.value.count, clock.nextDeadline)
                    let written = try await ledger.database.read {
                        try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM attempts WHERE kind = 'look'")
                    }
                    if now.1 != nil, now.0 == last.0, now.1 == last.1, written == now.0 { break }
                    last = now
                    try await Task.sleep(for: .milliseconds(10))
                }
                guard let next = clock.nextDeadline else { break }
                try await whileAsleep(ledger, seconds())
                watch(tracker.generation, seconds())
                await clock.base.advance(to: next)
            }
            try await group.waitForAll()
        }
        return (service.looks.value, try #require(finished.value), ledger)
    }

    /// One job, submitted at 0, whose every look answers `status` (or 404).
    func track(
        eta: Int?, status: String, giveUpAfter: Duration, notFound: Bool = false
    ) async throws -> ([Duration], TrackCounters, SQLiteLedger) {
        var settings = TrackSettings()
        settings.giveUpAfter = giveUpAfter
        let (looks, counters, ledger) = try await trackBatch([(0, eta)], settings: settings) { taskID, _ in
            notFound
                ? .retryable(status: 404, error: "HTTP 404: no such task", retryAfter: nil)
                : .found(RemoteStatus(taskID: taskID, status: status))
        }
        return (looks.map(\.at), counters, ledger)
    }

    /// The ages the untaught schedule looks at one task alone, from `first` until `end`.
    func untaughtLooks(from first: Double, through end: Double) -> [Duration] {
        let schedule = LookSchedule()
        let alone = Rate(count: 200, per: .seconds(60)).interval.seconds  // its fair share: all the looks
        let ages = sequence(first: first) { schedule.nextLook(after: $0, audioLength: nil, fairShare: alone) }
            .prefix { $0 <= end }
        return ages.map { .seconds($0) }
    }

    /// Equal but for rounding.
    func same(_ a: [Duration], _ b: [Duration]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs(($0 - $1).seconds) < 1e-6 }
    }

    @Test func looksComeAtTheETAThenFollowTheScheduleUntilGivenUp() async throws {
        let (looks, counters, ledger) = try await track(eta: 3, status: "in_progress", giveUpAfter: .seconds(200))
        let expected = untaughtLooks(from: 3, through: 210)  // the first look past 200 s is the last
        #expect(same(looks, expected), "\(looks)")
        // Alone, it has the whole look budget: a look each second, until a twentieth of its age is longer.
        #expect(Array(expected.prefix(4)) == [3, 4, 5, 6].map { Duration.seconds($0) })
        #expect(Array(expected[18...19]) == [21, 22.05].map { Duration.seconds($0) })
        #expect(counters.timedOut == 1 && counters.looks == expected.count)
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
        // The 404s are a minute apart at the first look past 70 s.
        let schedule = untaughtLooks(from: 10, through: 200)
        let last = try #require(schedule.firstIndex { $0 >= .seconds(70) })
        #expect(same(looks, Array(schedule[...last])), "\(looks)")
        #expect(counters.remoteMissing == 1 && counters.timedOut == 0 && counters.stillRunning == 0)
        let job = try ledger.database.read { try Row.fetchOne($0, sql: "SELECT state, last_error FROM jobs")! }
        #expect(job["state"] == "remote_missing")
        #expect(
            (job["last_error"] as String).contains(
                "404 \(last + 1) times over \(Int((schedule[last] - schedule[0]).seconds)) s"))
        let outcomes = try await ledger.database.read {
            try String.fetchAll($0, sql: "SELECT DISTINCT outcome FROM attempts")
        }
        #expect(outcomes == ["not_found"])
        #expect(RunOutcome.afterTracking(counters, stopReason: nil) == .someFailed)
    }

    @Test func theBatchTeachesWhenToLook() async throws {
        // 60 tasks, one a second, taking 30 to 39 s, in no order.
        let takes = (0..<60).map { 30 + Double($0 * 7 % 10) }
        let jobs = (0..<60).map { (submittedAt: Double($0), eta: Int?.none) }
        let (looks, counters, _) = try await trackBatch(jobs) { taskID, now in
            let index = Int(taskID.dropFirst())!
            let done = now >= Double(index) + takes[index]
            return .found(RemoteStatus(taskID: taskID, status: done ? "COMPLETED" : "IN_PROGRESS"))
        }
        #expect(counters.completed == 60)
        // How long after finishing each task was seen, once the first 20 have taught the schedule.
        let seen = Dictionary(grouping: looks, by: \.task).mapValues { $0.map(\.at.seconds).max()! }
        let delays = (20..<60).map { seen["t\($0)"]! - (Double($0) + takes[$0]) }
        let perTask = Double(looks.filter { Int($0.task.dropFirst())! >= 20 }.count) / 40
        // (The untaught schedule, looking at 30, 37.5 and 46.9 s, would be 4.2 s late on
        // average and 8.9 s at worst.)
        #expect(delays.max()! <= 7, "\(delays)")
        #expect(delays.reduce(0, +) / 40 <= 2.8, "\(delays)")
        #expect(perTask <= 4, "\(perTask) looks per task")
    }

    @Test func aTaskACallbackSettledIsNotLookedAtAgain() async throws {
        var settled = false
        let (looks, counters, ledger) = try await trackBatch(
            [(0, 3)],
            whileAsleep: { ledger, now in
                // Before its first look, the webhook records it completed.
                if !settled, now < 3 {
                    let done = RemoteStatus(taskID: "t0", status: "COMPLETED", audioURL: "http://x/a.wav")
                    try await ledger.recordStatus(jobID: 1, done)
                    settled = true
                }
            },
            answer: { taskID, _ in .found(RemoteStatus(taskID: taskID, status: "IN_PROGRESS")) })
        #expect(looks.isEmpty && counters.completed == 1 && counters.looks == 0)
        #expect(try await ledger.state(jobID: 1) == .completed)
    }

    /// Job 1 runs; job 2's request got no answer, and its callback (token "tok") may come
    /// until 60 s. `callbackAt`: when the callback settles it with task `t1`, if it does.
    func trackAwaitingACallback(
        at callbackAt: Double?
    ) async throws -> (
        looks: [(task: String, at: Duration)], counters: TrackCounters, ledger: SQLiteLedger, ended: Double
    ) {
        let ended = Locked(0.0)
        let (looks, counters, ledger) = try await trackBatch(
            [(0, 5), (0, nil)],
            before: { ledger in
                try await ledger.database.write { db in
                    try db.execute(sql: "UPDATE jobs SET state = 'in_doubt', task_id = NULL WHERE id = 2")
                    try db.execute(
                        sql: """
                            INSERT INTO attempts (job_id, kind, started_at, outcome, callback_token)
                            VALUES (2, 'submit', ?, 'no_answer', 'tok')
                            """, arguments: [Timestamp.string(Date(timeIntervalSince1970: 1_790_000_000))])
                }
            },
            whileAsleep: { ledger, now in
                ended.withLock { $0 = now }
                if let callbackAt, now >= callbackAt, try await ledger.state(jobID: 2) == .inDoubt {
                    let running = RemoteStatus(taskID: "t1", status: "IN_PROGRESS")
                    #expect(
                        try await ledger.settle(jobID: 2, callbackToken: "tok", taskID: "t1", status: running)
                            == .settled)
                }
            },
            callbacksMayCome: { ledger, start in
                try await ledger.latestRequestAwaitingCallback(batchID: 1).map { _ in start.addingTimeInterval(60) }
            },
            answer: { taskID, now in
                .found(RemoteStatus(taskID: taskID, status: now >= 8 ? "COMPLETED" : "IN_PROGRESS"))
            })
        return (looks, counters, ledger, ended.value)
    }

    /// A run following its batch does not end while a callback of a request in doubt may come:
    /// the job it settles is followed to its end, then the run ends at once.
    @Test func aRunWaitsForTheCallbacksOfItsRequestsInDoubt() async throws {
        let (looks, counters, ledger, ended) = try await trackAwaitingACallback(at: 20)
        let settledLooks = looks.filter { $0.task == "t1" }.map(\.at)
        #expect(
            settledLooks.count == 1 && settledLooks[0] >= .seconds(20) && settledLooks[0] <= .seconds(21), "\(looks)")
        #expect(counters.completed == 2 && ended < 22)
        #expect(try await ledger.state(jobID: 2) == .completed)
    }

    /// One whose callback never comes is left in doubt when the time it may come is over.
    @Test func aRunLeavesARequestInDoubtWhenItsCallbackCanNoLongerCome() async throws {
        let (looks, counters, ledger, ended) = try await trackAwaitingACallback(at: nil)
        #expect(!looks.contains { $0.task == "t1" } && counters.completed == 1)
        #expect(ended >= 59 && ended <= 60, "asked the ledger each second until 60 s: \(ended)")
        #expect(try await ledger.state(jobID: 2) == .inDoubt)
    }

    @Test func whenLooksAreScarceTheTaskMostLikelyFinishedGoesFirst() async throws {
        var settings = TrackSettings()
        settings.lookRate = Rate("1/min")!
        // t0 takes the first slot at 0 s; by the next, at 60 s, t1 (no eta, due at 10 s) and
        // t2 (its eta of 20 s passed) are both due: the service's eta makes t2 the likelier.
        let (looks, _, _) = try await trackBatch([(0, 0), (0, nil), (0, 20)], settings: settings) { taskID, _ in
            .found(RemoteStatus(taskID: taskID, status: "COMPLETED"))
        }
        #expect(looks.map(\.task) == ["t0", "t2", "t1"])
        #expect(looks.map(\.at) == [0, 60, 120].map { Duration.seconds($0) })
    }

    @Test func theTimeLeftCountsDownAndRisesOnlyOnNews() async throws {
        // 24 tasks sent a second apart, taking 20 to 32 s in no order.
        let takes = (0..<24).map { 20 + Double($0 * 7 % 13) }
        let jobs = (0..<24).map { (submittedAt: Double($0), eta: Int?.none) }
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        let lastFinish = (0..<24).map { Double($0) + takes[$0] }.max()!
        /// At each wake-up: the time, the seconds left, and what the tracker knew (its news).
        var seen: [(at: Double, left: Double, news: String)] = []
        let (_, counters, _) = try await trackBatch(
            jobs,
            watch: { outlook, now in
                let end = TimeLeft.likelyEnd(sending: nil, generating: outlook, now: start.addingTimeInterval(now))
                let left = max(0, (end ?? start).timeIntervalSince(start) - now)
                seen.append((now, left, outlook.news))
            },
            answer: { taskID, now in
                let index = Int(taskID.dropFirst())!
                let done = now >= Double(index) + takes[index]
                return .found(RemoteStatus(taskID: taskID, status: done ? "COMPLETED" : "IN_PROGRESS"))
            })
        #expect(counters.completed == 24)
        var risen = 0.0
        for (before, after) in zip(seen, seen.dropFirst()) {
            if before.news == after.news {
                // No news: it counts down by the time passed, to zero.
                #expect(abs(after.left - max(0, before.left - (after.at - before.at))) < 1e-6, "\(before) \(after)")
            } else if after.left > before.left {
                risen += after.left - before.left
            }
        }
        // What the news added, once the first tasks had taught the batch's times, is small
        // against the run...
        #expect(risen <= 15, "\(seen)")
        // ...and it ends near zero: in the last look gap before the last task finished.
        let last = try #require(seen.last { $0.at < lastFinish })
        #expect(last.left <= 6, "\(seen)")
    }
}

extension GenerationOutlook {
    /// What the tracker knows, in a line: it changes only with news.
    var news: String {
        "\(count) generating, \(schedule.learned) learned, seen running at \(tasks.values.compactMap(\.runningAt).sorted())"
    }
}
