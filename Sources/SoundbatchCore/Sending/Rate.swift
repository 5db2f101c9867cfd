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
