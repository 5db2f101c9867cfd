import Clocks
import SoundbatchAudio
import SoundbatchTesting
import Synchronization
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite
@testable import SoundbatchSandbox

@Suite struct RateLimiterTests {
    /// Starts `count` callers at once and returns, in order, when each was let through.
    func passTimes(
        count: Int, limiter: RateLimiter<CountingClock>, clock: CountingClock,
        advanceBy total: Duration, at event: (Duration, @Sendable () async -> Void)? = nil
    ) async -> [Duration] {
        let times = Locked<[Duration]>([])
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<count {
                group.addTask {
                    _ = try? await limiter.acquire()
                    let now = TestClock<Duration>.Instant().duration(to: clock.now)
                    times.withLock { $0.append(now) }
                }
            }
            // Before the clock moves, every caller must have settled: let through (and its
            // time noted) or asleep until a time still to come. On a busy machine tasks start
            // and wake late, and a time noted after the clock moved on would be wrong.
            func settle() async {
                let giveUp = ContinuousClock.now + .seconds(10)
                while !clock.settled(passed: times.value.count, of: count), ContinuousClock.now < giveUp {
                    try? await Task.sleep(for: .milliseconds(1))
                }
            }
            await settle()
            var elapsed = Duration.zero
            while elapsed < total {
                await clock.base.advance(by: .milliseconds(100))
                await settle()
                elapsed += .milliseconds(100)
                if let (at, happen) = event, elapsed == at { await happen() }
            }
        }
        return times.withLock { $0.sorted() }
    }

    @Test func spacesRequestsExactlyAtTheRate() async {
        let clock = CountingClock()
        let limiter = RateLimiter(rate: Rate("60/min")!, burst: 1, clock: clock)
        let times = await passTimes(count: 5, limiter: limiter, clock: clock, advanceBy: .seconds(6))
        #expect(times == [0, 1, 2, 3, 4].map { Duration.seconds($0) })
    }

    @Test func aBurstGoesAtOnceThenTheRateHolds() async {
        let clock = CountingClock()
        let limiter = RateLimiter(rate: Rate("2/s")!, burst: 3, clock: clock)
        let times = await passTimes(count: 6, limiter: limiter, clock: clock, advanceBy: .seconds(3))
        #expect(times == [0, 0, 0, 0.5, 1.0, 1.5].map { Duration.seconds($0) })
    }

    @Test func aPauseHoldsEveryoneThenResumesAtTheRate() async {
        let clock = CountingClock()
        let limiter = RateLimiter(rate: Rate("60/min")!, burst: 1, clock: clock)
        // Requests at 0 and 1 s; at 1.5 s the service says wait 5 s: the next goes at 6.5 s.
        let times = await passTimes(
            count: 4, limiter: limiter, clock: clock, advanceBy: .seconds(10),
            at: (.milliseconds(1500), { await limiter.pause(for: .seconds(5)) }))
        #expect(times == [0, 1, 6.5, 7.5].map { Duration.seconds($0) })
    }

    @Test func onlyTheFirstOfOverlappingPausesReportsItself() async {
        let clock = TestClock<Duration>()
        let limiter = RateLimiter(rate: Rate("1/s")!, clock: clock)
        #expect(await limiter.pause(for: .seconds(5)) == true)
        #expect(await limiter.pause(for: .seconds(3)) == false)
        #expect(await limiter.pause(for: .seconds(8)) == true)
    }

    @Test func a429LowersThePaceOncePerRoundTripAndAnswersBringItBack() async throws {
        let clock = TestClock<Duration>()
        let limiter = RateLimiter(rate: Rate("60/min")!, clock: clock)
        let early = try await limiter.acquire()
        await clock.advance(by: .milliseconds(500))
        let first = await limiter.rateLimited(sentAt: early, latency: .zero, retryAfter: nil)
        #expect(first == .init(paused: true, lowered: true, first: true))
        #expect(await limiter.share == 0.95)
        // Another 429 to a request that left before the pace came down says nothing new.
        let again = await limiter.rateLimited(sentAt: early, latency: .zero, retryAfter: nil)
        #expect(!again.lowered)
        #expect(await limiter.share == 0.95)
        // One to a request sent after it does.
        await clock.advance(by: .seconds(2))
        let later = try await limiter.acquire()
        #expect(await limiter.rateLimited(sentAt: later, latency: .zero, retryAfter: nil).lowered)
        let lowered = await limiter.share
        #expect(abs(lowered - 0.9025) < 1e-12)
        // Each other answer climbs back: quickly (16 answers) to just under 0.95, where it was
        // refused last, then slowly; never past the rate.
        for _ in 0..<16 { await limiter.answered(after: .zero) }
        let near = await limiter.share
        #expect(abs(near - 0.9425) < 1e-9)
        for _ in 0..<84 { await limiter.answered(after: .zero) }
        let climbed = await limiter.share
        #expect(abs(climbed - 0.9467) < 1e-9)
        for _ in 0..<2000 { await limiter.answered(after: .zero) }
        #expect(await limiter.share == 1)
        #expect(await limiter.interval == .seconds(1))
    }

    @Test func without429sTheLatencySpreadAddsItsShareOfAMinute() async {
        let limiter = RateLimiter(rate: Rate("60/min")!, clock: TestClock<Duration>())
        // Round trips from 300 to 696 ms: from the shortest to the next-to-longest is 0.392 s;
        // with a quarter more, sixty requests a minute share it: 8.2 ms each.
        for step in 0..<100 { await limiter.answered(after: .milliseconds(300 + 4 * step)) }
        #expect(await limiter.share == 1)
        let headroom = await limiter.headroom.seconds
        #expect(abs(headroom - 1.25 * 0.392 / 60) < 1e-9)
        // One stray answer of 5 s does not move it.
        await limiter.answered(after: .seconds(5))
        let after = await limiter.headroom.seconds
        #expect(abs(after - 1.25 * 0.392 / 60) < 1e-9)
        // A 429, with Retry-After or without, leaves it: a round trip's spread is mostly the
        // service's own work, after its limiter counted the request, and says nothing of how
        // arrivals spread. The 429 lowers the pace instead.
        await limiter.rateLimited(sentAt: .init(), latency: .milliseconds(500), retryAfter: .seconds(1))
        await limiter.rateLimited(sentAt: .init(), latency: .milliseconds(500), retryAfter: nil)
        let strict = await limiter.headroom.seconds
        #expect(strict < 0.01)  // (the two 429s' round trips moved the spread a little)
        #expect(await limiter.share < 1)
    }

    @Test func a429WithoutRetryAfterPausesEveryoneForOneInterval() async {
        let clock = CountingClock()
        let limiter = RateLimiter(rate: Rate("60/min")!, burst: 1, clock: clock)
        // Requests at 0 and 1 s; at 1.5 s a 429 without Retry-After: the pace drops to 57/min
        // and everyone waits one interval at it, to 2.55 s. The one due at 2 s waits it out and
        // queues again, behind the one due at 3 s.
        let times = await passTimes(
            count: 4, limiter: limiter, clock: clock, advanceBy: .seconds(6),
            at: (
                .milliseconds(1500),
                { _ = await limiter.rateLimited(sentAt: clock.now, latency: .zero, retryAfter: nil) }
            ))
        #expect(times == [0, 1, 3, 4].map { Duration.seconds($0) })
    }

    @Test func ratesParse() {
        #expect(Rate("60/min") == Rate(count: 60, per: .seconds(60)))
        #expect(Rate(" 2/s ") == Rate(count: 2, per: .seconds(1)))
        #expect(Rate("1.5/m")?.perMinute == 1.5)
        #expect(Rate("600/MIN")?.interval == .milliseconds(100))
        for bad in ["", "60", "0/min", "-1/s", "x/min", "60/day", "nan/s", "inf/s"] {
            #expect(Rate(bad) == nil, "\(bad)")
        }
    }

    @Test func backoffGrowsToItsCapWithFullJitter() {
        let backoff = Backoff()
        #expect(
            (1...8).map { backoff.ceiling(afterAttempt: $0) }
                == [1, 2, 4, 8, 16, 32, 60, 60].map { Duration.seconds($0) })
        var random = SeededRandom(seed: 3)
        let delays = (0..<200).map { _ in backoff.delay(afterAttempt: 3, using: &random) }
        #expect(delays.allSatisfy { $0 >= .zero && $0 <= .seconds(4) })
        #expect(delays.contains { $0 < .seconds(1) } && delays.contains { $0 > .seconds(3) })
    }
}

/// The limiter against a server's strict leaky bucket (nothing early, no Retry-After), simulated
/// on a clock that jumps to each sleep's end: requests arrive at their slot plus the network's
/// jitter, and each answer comes back after the service's own time, when the limiter hears it.
@Suite struct StrictLimiterSimulationTests {
    struct Run {
        var pace: Double
        var refusedShare: Double
    }

    /// Sends until `accepted` requests are admitted at 600/min; returns the pace achieved, as a
    /// share of the rate, and the share of requests refused.
    func simulate(
        networkJitter: Double, serviceTime: ClosedRange<Double>, accepted target: Int = 1000
    ) async throws
        -> Run
    {
        let clock = ImmediateClock<Duration>()
        let limiter = RateLimiter(rate: Rate("600/min")!, clock: clock)
        var server = ServerRateLimit(perMinute: 600, shape: .strict)
        var random = SeededRandom(seed: 7)
        typealias Answer = (at: Double, slot: ImmediateClock<Duration>.Instant, status: Int, latency: Double)
        var answers: [Answer] = []
        var sent = 0
        var admittedAt: [Double] = []
        func seconds(_ instant: ImmediateClock<Duration>.Instant) -> Double {
            ImmediateClock<Duration>.Instant().duration(to: instant).seconds
        }
        func hear(until now: Double) async {
            answers.sort { $0.at < $1.at }
            while let first = answers.first, first.at <= now {
                answers.removeFirst()
                await limiter.record(
                    httpStatus: first.status, sentAt: first.slot, latency: .seconds(first.latency), retryAfter: nil)
            }
        }
        while admittedAt.count < target {
            await hear(until: seconds(clock.now))
            let slot = try await limiter.acquire()
            let now = seconds(slot)
            await hear(until: now)
            sent += 1
            let arrival = now + random.double(in: 0...networkJitter)
            let admitted = server.admit(at: arrival).admitted
            if admitted { admittedAt.append(arrival) }
            let answer = arrival + random.double(in: serviceTime)
            answers.append((answer, slot, admitted ? 200 : 429, answer - now))
        }
        let pace = Double(admittedAt.count - 1) / (admittedAt.last! - admittedAt.first!) / 10
        return Run(pace: pace, refusedShare: Double(sent - admittedAt.count) / Double(sent))
    }

    @Test func withTheServiceTimeBehindTheLimiterThePaceHoldsNearTheRate() async throws {
        // The service's 30-100 ms come after the limiter counts: they say nothing of arrivals,
        // and must not widen the spacing (a round-trip headroom held this at 0.59).
        let run = try await simulate(networkJitter: 0.001, serviceTime: 0.030...0.100)
        #expect(run.pace >= 0.95)
        #expect(run.refusedShare <= 0.02)
    }

    @Test func withJitterAheadOfTheLimiterThePaceSettlesNearItsBound() async throws {
        // Arrivals spread by up to 20 ms on a 100 ms interval: no client is admitted every
        // time above 100 / 120 = 0.83 of the rate. The 429s teach the spacing near that.
        let run = try await simulate(networkJitter: 0.020, serviceTime: 0.030...0.070)
        #expect(run.pace >= 0.75)
        #expect(run.pace <= 0.95)
        #expect(run.refusedShare <= 0.02)
    }
}
