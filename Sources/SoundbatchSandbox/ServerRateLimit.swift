import Foundation

/// How the sandbox enforces a rate: servers hold the same limit in different ways, and a
/// client must keep to any of them.
public enum LimiterShape: String, Sendable, CaseIterable {
    /// A token bucket with room for two: a request may come one interval early.
    case bucket
    /// At most the limit's count in any 60 seconds.
    case window
    /// A strict leaky bucket: never sooner than one interval after the last one admitted.
    case strict
}

/// One limit as the server enforces it; times are seconds on any steady clock.
struct ServerRateLimit {
    let shape: LimiterShape
    let interval: Double
    let perWindow: Int
    /// bucket: when the next request is due; strict: the last admitted.
    private var mark: Double?
    /// window: the times admitted in the last 60 seconds, oldest first.
    private var admitted: [Double] = []

    init(perMinute: Double, shape: LimiterShape = .bucket) {
        self.shape = shape
        interval = 60 / perMinute
        perWindow = max(Int(perMinute.rounded(.down)), 1)
    }

    /// Admits a request at `now`, or says how many seconds until one would be admitted.
    mutating func admit(at now: Double) -> (admitted: Bool, retryIn: Double) {
        switch shape {
        case .bucket:
            let due = mark ?? now
            if due - now > interval { return (false, due - now - interval) }
            mark = max(due, now) + interval
        case .window:
            admitted.removeAll { now - $0 >= 60 }
            if admitted.count >= perWindow { return (false, admitted[0] + 60 - now) }
            admitted.append(now)
        case .strict:
            if let last = mark, now - last < interval { return (false, last + interval - now) }
            mark = now
        }
        return (true, 0)
    }

    /// `admit` on the continuous clock.
    mutating func admit(now: ContinuousClock.Instant) -> (admitted: Bool, retryIn: Double) {
        admit(at: ServerRateLimit.origin.duration(to: now).seconds)
    }

    /// A fixed instant to measure from.
    private static let origin = ContinuousClock.now
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let factor = Foundation.pow(10, Double(places))
        return (self * factor).rounded() / factor
    }
}
