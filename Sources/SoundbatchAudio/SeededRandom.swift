import Foundation

/// A small seeded generator (SplitMix64), so a sandbox run, or a test, can be replayed, and
/// an export's dither is the same noise every time (the same sound makes the same bytes).
/// The standard library has no seeded generator; this is its whole algorithm.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    public mutating func double(in range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * Double(next() >> 11) / Double(1 << 53)
    }

    /// A standard normal draw (Box–Muller).
    public mutating func normal() -> Double {
        let u = max(double(in: 0...1), .leastNonzeroMagnitude)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * double(in: 0...1))
    }
}
