import Foundation

/// When a run will likely end: the sending still to do at the pace in force, then the
/// generation of the last task sent, or the likely finish of the tasks still generating,
/// whichever is later.
///
/// It is a moment, not a length: between news it counts down by itself, and news (a job
/// sent, a task seen running or finished, the pace lowered) re-estimates it rather than
/// starting it again. The batch's end is the last of many tasks, so each is taken at a high
/// quantile of the batch's generation times while many are left (0.9), down to the median
/// for the last one: as tasks finish, the estimate comes down with them.
public enum TimeLeft {
    /// What is left to send, as the dispatcher counts it.
    public struct Sending: Sendable {
        /// Jobs whose first request has not left yet.
        public var left: Int
        /// Seconds between two requests at the pace in force.
        public var interval: Double
        /// When the last request left.
        public var lastSentAt: Date?

        public init(left: Int, interval: Double, lastSentAt: Date?) {
            self.left = left
            self.interval = interval
            self.lastSentAt = lastSentAt
        }

        /// When the last job will likely have been sent, nil when none is left.
        func end(now: Date) -> Date? {
            guard left > 0 else { return nil }
            let next = max(now, (lastSentAt ?? now).addingTimeInterval(interval))
            return next.addingTimeInterval(Double(left - 1) * interval)
        }
    }

    /// The likely end; nil when there is nothing to estimate. `generating` is nil when the
    /// run does not wait for the sounds.
    public static func likelyEnd(sending: Sending?, generating: GenerationOutlook?, now: Date) -> Date? {
        let tasksLeft = (sending?.left ?? 0) + (generating?.count ?? 0)
        let quantile = min(0.9, max(0.5, 1 - 1 / Double(1 + tasksLeft)))
        let sent = sending?.end(now: now)
        let lastGenerated = sent.map { end in
            generating.map { end.addingTimeInterval($0.likelyGeneration(quantile: quantile)) } ?? end
        }
        let ends = [lastGenerated, generating?.likelyEnd(quantile: quantile)].compactMap { $0 }
        return ends.max() ?? (sending != nil ? now : nil)
    }
}
