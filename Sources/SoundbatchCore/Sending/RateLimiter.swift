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
