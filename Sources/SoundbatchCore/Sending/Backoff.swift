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
