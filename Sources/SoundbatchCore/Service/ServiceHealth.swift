import Foundation
import Logging
import Synchronization

/// What one answer says of the service as a whole, not of the job it was for.
public enum ServiceSignal: Sendable, Equatable {
    /// The service answered (whatever it said of the job).
    case answering
    /// The request never reached it: connection refused, no route, connect timeout.
    case unreachable(String)
    /// A 5xx (or 408) page, or a request that got no answer at all.
    case serverError(String)
}

extension SubmitOutcome {
    public var signal: ServiceSignal {
        switch self {
        case let .retryable(nil, error, _): .unreachable(error)
        case let .retryable(status?, error, _) where status >= 500 || status == 408: .serverError(error)
        case let .noAnswer(nil, error): .serverError(error)
        default: .answering
        }
    }
}

extension StatusOutcome {
    public var signal: ServiceSignal {
        switch self {
        case let .retryable(nil, error, _): .unreachable(error)
        case let .retryable(status?, error, _) where status >= 500 || status == 408: .serverError(error)
        default: .answering
        }
    }
}

/// The service stayed down past --outage-limit.
public struct ServiceDown: Error, Equatable {
    public var since: Date
    public var reason: String
}

/// A circuit breaker shared by every request of a run, submissions and looks alike.
///
/// Closed while the service answers. A request that never reached it, or 5xx answers for
/// `threshold` different jobs with no good answer between, open it: every request then waits, and one at a
/// time probes, at growing intervals (1 s, doubling, at most `maxProbeInterval`); the first
/// answer closes it again. An outage is the service's state, not a job's fault: failures
/// while it lasts (and the one that opens it) never count toward a job's attempts, so a job
/// fails by 5xx only when its own requests keep failing while others are answered. Past `limit`, waiting requests throw
/// `ServiceDown` and the run stops with its jobs pending.
public actor ServiceHealth<C: Clock> where C.Duration == Duration {
    private struct Outage {
        var since: Date
        /// When it began, on the breaker's clock.
        var began: C.Instant
        var reason: String
        var nextProbe: C.Instant
        var interval: Duration
        var probing = false
    }

    private let clock: C
    private let wallClock: @Sendable () -> Date
    private let logger: Logger
    public let limit: Duration
    public let threshold = 2
    public let firstProbeInterval: Duration = .seconds(1)
    public let maxProbeInterval: Duration = .seconds(30)
    private var outage: Outage? {
        didSet { outageBegan.withLock { $0 = outage?.since } }
    }
    /// When the current outage began, readable at any moment (for the progress line).
    private let outageBegan = Mutex<Date?>(nil)
    /// Jobs whose requests met a server error since the last good answer.
    private var failingJobs: Set<Int64> = []

    public init(limit: Duration, clock: C, wallClock: @escaping @Sendable () -> Date = { Date() }, logger: Logger) {
        self.limit = limit
        self.clock = clock
        self.wallClock = wallClock
        self.logger = logger
    }

    public var isDown: Bool { outage != nil }

    /// When the current outage began; nil while the service answers.
    public nonisolated var downSince: Date? { outageBegan.withLock { $0 } }

    /// Waits until a request may go: at once while the service answers; during an outage,
    /// until it is this caller's turn to probe. Throws `ServiceDown` past the limit.
    @discardableResult
    public func admit() async throws -> ServiceAdmission {
        while let current = outage {
            if wallClock().timeIntervalSince(current.since) >= limit.seconds {
                throw ServiceDown(since: current.since, reason: current.reason)
            }
            let now = clock.now
            if !current.probing && now >= current.nextProbe {
                outage?.probing = true
                return .probe
            }
            // Wake when the probe is due, or soon after, to see how it went.
            let wake = current.probing ? now.advanced(by: .milliseconds(200)) : current.nextProbe
            try await clock.sleep(until: wake, tolerance: nil)
        }
        return .request
    }

    /// `admit`, or nil as soon as `stop` is: an interrupt during an outage's wait stops
    /// at once, not at the next probe (up to 30 s away).
    public nonisolated func admit(unless stop: StopSignal) async throws -> ServiceAdmission? {
        try await stop.unlessStopped { try await self.admit() }
    }

    /// The caller let through did not send its request after all (its job was taken by
    /// another runner, or settled by a callback, or the run stopped): a probe hands its turn
    /// to the next caller at once, else every request would wait for an answer that never
    /// comes, until the outage limit.
    public func withdraw(_ admission: ServiceAdmission) {
        if admission == .probe { outage?.probing = false }
    }

    /// Takes in what an answer to a request sent at `sentAt` says of the service. Returns
    /// whether a failure is the job's own: false for anything that happened while the
    /// service was out. An answer to a request sent before an outage began (answered as
    /// the service went away) says nothing of whether it is back.
    @discardableResult
    public func record(_ signal: ServiceSignal, jobID: Int64, sentAt: C.Instant) -> Bool {
        switch signal {
        case .answering:
            if let current = outage, sentAt < current.began { return true }
            if let current = outage {
                let seconds = Int(wallClock().timeIntervalSince(current.since))
                logger.notice("the service answers again after \(seconds) s; carrying on")
            }
            outage = nil
            failingJobs = []
            return true
        case let .unreachable(reason):
            open(reason)
            return false
        case let .serverError(reason):
            if outage != nil {
                open(reason)
                return false
            }
            failingJobs.insert(jobID)
            if failingJobs.count >= threshold {
                open(reason)
                return false
            }
            return true
        }
    }

    /// Opens the breaker, or, after a failed probe, waits twice as long for the next one.
    private func open(_ reason: String) {
        let now = clock.now
        guard var current = outage else {
            let since = wallClock()
            outage = Outage(
                since: since, began: now, reason: reason, nextProbe: now.advanced(by: firstProbeInterval),
                interval: firstProbeInterval)
            logger.warning(
                """
                the service is not answering since \(Timestamp.timeOfDay(since)) (\(reason)); \
                holding every request and trying one at growing intervals, up to every \
                \(Int(maxProbeInterval.seconds)) s
                """)
            return
        }
        guard current.probing else { return }  // another request of the same outage
        current.interval = min(current.interval * 2, maxProbeInterval)
        current.nextProbe = now.advanced(by: current.interval)
        current.probing = false
        current.reason = reason
        outage = current
    }
}

/// What `ServiceHealth` let a caller through as: an ordinary request, or the outage's one
/// probe, whose answer says whether the service is back.
public enum ServiceAdmission: Sendable, Equatable {
    case request, probe
}
