/// A request rate such as `60/min` or `2/s`.
public struct Rate: Sendable, Equatable, CustomStringConvertible {
    public var count: Double
    public var per: Duration

    public init(count: Double, per: Duration) {
        self.count = count
        self.per = per
    }

    /// Parses `N/min`, `N/m`, `N/s`, `N/sec` or `N/h`; N may have a fraction.
    public init?(_ text: String) {
        let parts = text.trimmed.lowercased().split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Double(parts[0]), count > 0, count.isFinite else { return nil }
        switch parts[1] {
        case "s", "sec", "second": per = .seconds(1)
        case "m", "min", "minute": per = .seconds(60)
        case "h", "hour": per = .seconds(3600)
        default: return nil
        }
        self.count = count
    }

    /// The time between two requests at this rate.
    public var interval: Duration { per / count }

    public var perMinute: Double { count * 60 / per.seconds }

    public var description: String {
        let number = count == count.rounded() ? String(Int(count)) : String(count)
        switch per {
        case .seconds(1): return "\(number)/s"
        case .seconds(3600): return "\(number)/h"
        default: return "\(number)/min"
        }
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    public var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}

/// Spaces requests out to a rate, with room for `burst` at once, and pauses everyone
/// when the service says to slow down.
///
/// It is the generic cell rate algorithm: each caller reserves the next free slot and
/// sleeps until it, so callers go in order and the rate holds exactly over any window.
public actor RateLimiter<C: Clock> where C.Duration == Duration {
    private let clock: C
    private let interval: Duration
    /// How far ahead of its slot a request may go: (burst - 1) intervals.
    private let tolerance: Duration
    /// When the next slot is theoretically free.
    private var nextSlot: C.Instant
    private var pausedUntil: C.Instant?

    public init(rate: Rate, burst: Int = 1, clock: C) {
        self.clock = clock
        interval = rate.interval
        tolerance = rate.interval * max(burst - 1, 0)
        nextSlot = clock.now
    }

    /// Waits until a request may be sent. Throws CancellationError when cancelled.
    public func acquire() async throws {
        while true {
            let now = clock.now
            if let pausedUntil, now < pausedUntil {
                try await clock.sleep(until: pausedUntil, tolerance: nil)
                continue
            }
            let slot = max(nextSlot, now)
            let goAt = slot.advanced(by: .zero - tolerance)
            nextSlot = slot.advanced(by: interval)
            if goAt <= now { return }
            try await clock.sleep(until: goAt, tolerance: nil)
            // A pause may have begun while this caller slept; if so, wait it out and queue again.
            if let pausedUntil, clock.now < pausedUntil { continue }
            return
        }
    }

    /// Holds every caller back for `duration` (a 429's Retry-After, or a backoff).
    /// Returns false when a pause at least as long was already under way, so that only
    /// the first of many 429s is logged.
    @discardableResult
    public func pause(for duration: Duration) -> Bool {
        let until = clock.now.advanced(by: duration)
        if let pausedUntil, pausedUntil >= until { return false }
        pausedUntil = until
        // After the pause, start again at the rate from its end, not with a burst.
        nextSlot = max(nextSlot, until)
        return true
    }
}

/// Exponential backoff with full jitter: a random wait between zero and
/// min(cap, base * 2^(attempt - 1)).
public struct Backoff: Sendable {
    public var base: Duration = .seconds(1)
    public var cap: Duration = .seconds(60)

    public init(base: Duration = .seconds(1), cap: Duration = .seconds(60)) {
        self.base = base
        self.cap = cap
    }

    /// The longest wait after the given failed attempt (1 for the first).
    public func ceiling(afterAttempt attempt: Int) -> Duration {
        let factor = pow2(min(max(attempt - 1, 0), 30))
        return min(cap, base * factor)
    }

    public func delay(afterAttempt attempt: Int, using random: inout some RandomNumberGenerator) -> Duration {
        ceiling(afterAttempt: attempt) * Double.random(in: 0...1, using: &random)
    }

    private func pow2(_ exponent: Int) -> Double { Double(1 << exponent) }
}
