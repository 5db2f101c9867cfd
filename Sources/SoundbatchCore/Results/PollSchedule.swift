/// When to look at a task.
public struct PollSchedule: Sendable {
    /// The first look when the service gave no eta (or -1).
    public var unknownETA: Duration = .seconds(10)
    /// The second look comes this long after the first; each later gap doubles...
    public var firstGap: Duration = .seconds(5)
    /// ...up to this.
    public var maxGap: Duration = .seconds(60)

    public init() {}

    /// How long after submission the first look comes.
    public func firstLook(eta: Int?) -> Duration {
        guard let eta, eta >= 0 else { return unknownETA }
        return .seconds(eta)
    }

    /// The wait after the given look (1 for the first) found the task still running.
    public func gap(afterLook look: Int) -> Duration {
        min(maxGap, firstGap * Double(1 << min(max(look - 1, 0), 20)))
    }
}
