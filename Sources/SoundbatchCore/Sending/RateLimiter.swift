/// Spaces requests out to a rate and never faster, and learns how much slower the service
/// wants them.
///
/// Each caller reserves the next free slot and sleeps until it (the generic cell rate
/// algorithm), so callers go in order and the rate holds over any window. The spacing is
/// the configured interval, never less, widened two ways:
/// - **Headroom for a window's jitter.** A server counts requests when they arrive, and the
///   network spreads arrival times by at most the round trips' spread W. Widening each
///   interval by W/N, N the requests a minute allows, keeps any N requests at least a minute
///   apart at the server: a per-minute window then never overflows. (A quarter more than the
///   spread measured, for what the last hundred answers have not shown.) It is a sixtieth
///   of the spread at 60/min: under 1% of the interval.
/// - **What 429s teach.** A server may hold the rate stricter than that: a leaky bucket with
///   no burst refuses anything a moment early. How much arrival times spread cannot be seen
///   from round trips (most of a round trip is the service's own work, after its limiter has
///   counted the request), so no headroom is assumed for it: the 429s teach it, by where they
///   fall. The pace returns quickly to a *ceiling*, the fastest pace that has not drawn 429s
///   again and again, and climbs past it slowly; a pace held 100 answers without a 429
///   becomes the ceiling. Each 429 backs the pace off by `decrease`, once per round trip (the
///   429s of requests already on their way say nothing new), and pauses everyone. Whether
///   it lowers the ceiling depends on where it fell:
///   - *alone*, after 100 answers at the ceiling without one: a hiccup (a request held
///     back, the next one then arriving too soon): the ceiling stays, and the pace is back
///     at it within 12 answers. A batch that meets one early is not slow for the rest of it.
///   - *again* at the ceiling, within 100 answers at it of the last: the ceiling is too
///     fast for this server: it comes down to 1% under where the 429 fell (the first 429
///     at the configured rate itself, 2%: a limiter held at exactly the rate refuses about
///     every other request there).
///   - *on the way back*, under the ceiling: three in a row, none at the ceiling between,
///     say the server's limit is under it: it comes down to 1% under the highest.
///   - *in a burst*, within five answers of the last 429: counted with it, nothing more.
///   Against a strict limiter the pace settles just under the one that draws 429s again and
///   again, and a hiccup costs only its own 429.
///
/// A 429 with a Retry-After pauses everyone for it. One without goes on at the lowered pace:
/// the refused request did not count at the server. Either way the slots given out but not
/// yet reached are given again, at the new pace, right after the last one that went: none
/// goes at the old pace, and none is left unused (a pause of one interval without that cost
/// each 429 against nginx two intervals, not one).
///
/// With a `SharedPace` (runners sharing a key on a server database), the slots are reserved
/// there instead, at this limiter's interval, and its pauses are shared: the runners together
/// hold the key's rate. (A burst is then not allowed: slots are one interval apart.)
public actor RateLimiter<C: Clock> where C.Duration == Duration {
    private let clock: C
    /// The configured rate's interval: the pace never goes faster.
    private let ceilingInterval: Duration
    /// How far ahead of its slot a request may go: (burst - 1) intervals.
    private let tolerance: Duration
    /// The requests a minute allows, for the jitter headroom.
    private let perMinute: Double
    /// When the next slot is theoretically free, and the last one a caller went in.
    private var nextSlot: C.Instant
    private var lastGiven: C.Instant?
    /// Grows when the slots given out are given again (the pace lowered, or a pause).
    private var epoch = 0
    private var pausedUntil: C.Instant?
    /// The share of the configured rate in force, lowered by 429s.
    public private(set) var share = 1.0
    /// The share the pace returns to quickly: the fastest that has not drawn 429s again and again.
    public private(set) var ceiling = 1.0
    /// Answers since the last 429 counted (none yet: as far apart as a burst allows), and
    /// those of them at the ceiling or above.
    private var answersSinceRefusal = RateLimiter.burst
    private var answersAtCeiling = 0
    /// The shares where the last 429s fell on the way back to the ceiling, none at it since.
    private var fellShort: [Double] = []
    /// When the pace was last lowered: 429s to requests sent before then are not counted again.
    private var loweredAt: C.Instant?
    private var latencies = LatencySpread()
    /// The key's pace, when runners share it.
    private let shared: (any SharedPace)?
    /// A pause not yet told to the other runners: told before the next reservation.
    private var pauseToShare: C.Instant?

    /// A 429 multiplies the pace by (1 - decrease)...
    public static var decrease: Double { 0.03 }
    /// ...and each other answer adds back this share of the rate while the pace is under the
    /// ceiling (12 answers)...
    public static var fastIncrease: Double { 0.0025 }
    /// ...and this much past it (200 answers for 1%).
    public static var slowIncrease: Double { 0.00005 }
    /// Answers without a 429 that make a faster pace the ceiling; a 429 at the ceiling within
    /// as many answers at it of the last one came again.
    public static var proven: Int { 100 }
    /// 429s within this many answers of the last are one burst.
    public static var burst: Int { 5 }
    /// The pace never drops below this share of the rate.
    public static var floor: Double { 0.1 }

    public init(rate: Rate, burst: Int = 1, clock: C, shared: (any SharedPace)? = nil) {
        self.clock = clock
        self.shared = shared
        ceilingInterval = rate.interval
        tolerance = rate.interval * max(burst - 1, 0)
        perMinute = max(rate.perMinute, 1)
        nextSlot = clock.now
    }

    /// The spacing in force.
    public var interval: Duration { ceilingInterval / share + headroom }

    /// What the round trips' spread adds to each interval, for a per-minute window.
    public var headroom: Duration { .seconds(1.25 * latencies.spread / perMinute) }

    /// The pace in force, in requests a minute.
    public var pacePerMinute: Double { 60 / interval.seconds }

    /// The pace in force while 429s hold it under the rate; nil at the rate.
    public var loweredPace: Double? { share < 1 ? pacePerMinute : nil }

    /// Takes in what became of the request sent in `slot` (what `acquire` returned), its
    /// answer's HTTP status (nil when none came) and round trip. A 429 slows everyone down
    /// and says how; any other answer lets the pace climb back; no answer tells nothing.
    @discardableResult
    public func record(
        httpStatus: Int?, sentAt slot: C.Instant, latency: Duration, retryAfter: Duration?
    )
        -> Slowdown?
    {
        guard let httpStatus else { return nil }
        if httpStatus == 429 { return rateLimited(sentAt: slot, latency: latency, retryAfter: retryAfter) }
        answered(after: latency)
        return nil
    }

    /// Waits until a request may be sent, and returns the slot it was given. Throws
    /// CancellationError when cancelled.
    @discardableResult
    public func acquire() async throws -> C.Instant {
        while true {
            let now = clock.now
            if let pausedUntil, now < pausedUntil {
                try await clock.sleep(until: pausedUntil, tolerance: nil)
                continue
            }
            if let shared {
                let slot = try await reserve(shared)
                if let pausedUntil, clock.now < pausedUntil { continue }  // a 429 came meanwhile
                return slot
            }
            let slot = max(nextSlot, now)
            let goAt = slot.advanced(by: .zero - tolerance)
            nextSlot = slot.advanced(by: interval)
            if goAt <= now {
                lastGiven = now
                return now
            }
            let given = epoch
            try await clock.sleep(until: goAt, tolerance: nil)
            // A pause may have begun while this caller slept, or the pace come down: if so, wait
            // the pause out and queue again, at the pace in force.
            if let pausedUntil, clock.now < pausedUntil { continue }
            if epoch != given { continue }
            lastGiven = goAt
            return goAt
        }
    }

    /// Reserves a slot of the shared pace and waits for it, telling the other runners of a
    /// pause first.
    private func reserve(_ shared: any SharedPace) async throws -> C.Instant {
        if let until = pauseToShare {
            pauseToShare = nil
            let left = clock.now.duration(to: until)
            if left > .zero { try await shared.pause(for: left) }
        }
        let wait = try await shared.reserve(interval: interval)
        if wait > .zero { try await clock.sleep(for: wait) }
        return clock.now
    }

    /// Takes in an answer other than a 429, with its round trip: the pace climbs back a little.
    public func answered(after latency: Duration) {
        latencies.add(latency.seconds)
        answersSinceRefusal += 1
        if atCeiling(share) {
            answersAtCeiling += 1
            fellShort = []
        }
        share = share < ceiling ? min(ceiling, share + Self.fastIncrease) : min(1, share + Self.slowIncrease)
        if answersSinceRefusal >= Self.proven { ceiling = max(ceiling, share) }  // held clean: a faster pace proven
    }

    /// What a 429 changed.
    public struct Slowdown: Sendable, Equatable {
        /// A new pause began (false when one at least as long was under way).
        public var paused: Bool
        /// The pace was lowered; `first` when it had never been before.
        public var lowered: Bool
        public var first: Bool
    }

    /// Takes in a 429 to the request sent at `sentAt` (what `acquire` returned): everyone
    /// pauses for `retryAfter`, if any, and the pace is lowered unless it already was since
    /// that request left.
    @discardableResult
    public func rateLimited(sentAt: C.Instant, latency: Duration, retryAfter: Duration?) -> Slowdown {
        latencies.add(latency.seconds)
        var change = Slowdown(paused: false, lowered: false, first: false)
        if loweredAt.map({ sentAt >= $0 }) ?? true {
            change.first = loweredAt == nil
            change.lowered = true
            learn(refusedAt: share)
            share = max(Self.floor, share * (1 - Self.decrease))
            loweredAt = clock.now
            // The slots not yet reached again, at the new pace, from the last that went.
            epoch += 1
            nextSlot = max(clock.now, (lastGiven ?? clock.now).advanced(by: interval))
        }
        if let retryAfter { change.paused = pause(for: retryAfter) }
        return change
    }

    /// Lowers the ceiling, or not, by where a 429 fell: the share in force when its request left.
    private func learn(refusedAt fell: Double) {
        defer { (answersSinceRefusal, answersAtCeiling) = (0, 0) }
        guard answersSinceRefusal >= Self.burst || answersAtCeiling > 0 else { return }  // one burst: counted once
        if atCeiling(fell) {
            guard answersAtCeiling < Self.proven else { return }  // alone, after a good while at the ceiling: a hiccup
            // Again at the ceiling (or the first at the rate itself, which a limiter held at
            // exactly the rate refuses every other time): under where it fell, 1% (2%).
            ceiling = max(Self.floor, fell * (fell == 1 ? 0.98 : 0.99))
        } else {
            // On the way back: three in a row short of the ceiling say the limit is under it.
            fellShort.append(fell)
            guard fellShort.count >= 3 else { return }
            ceiling = max(Self.floor, (fellShort.max() ?? fell) * 0.99)
            fellShort = []
        }
    }

    /// Whether a pace is the ceiling's (to rounding: the climb back stops a hair under it).
    private func atCeiling(_ pace: Double) -> Bool { pace >= ceiling * 0.995 }

    /// Holds every caller back for `duration` (a 429's Retry-After, or a backoff).
    /// Returns false when a pause at least as long was already under way, so that only
    /// the first of many 429s is logged.
    @discardableResult
    public func pause(for duration: Duration) -> Bool {
        let until = clock.now.advanced(by: duration)
        if let pausedUntil, pausedUntil >= until { return false }
        pausedUntil = until
        if shared != nil { pauseToShare = until }
        // After the pause, the slots given out are given again from its end, at the pace.
        epoch += 1
        nextSlot = until
        return true
    }
}

/// The spread of recent round trips: from the shortest to the next-to-longest of the last
/// 100, so that one stray answer does not slow the whole run.
struct LatencySpread {
    private var recent: [Double] = []
    private var next = 0
    private(set) var spread = 0.0

    mutating func add(_ seconds: Double) {
        guard seconds.isFinite, seconds >= 0 else { return }
        if recent.count < 100 {
            recent.append(seconds)
        } else {
            recent[next] = seconds
            next = (next + 1) % recent.count
        }
        let sorted = recent.sorted()
        spread = sorted[(sorted.count - 1) * 99 / 100] - sorted[0]
    }
}
