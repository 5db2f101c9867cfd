import Foundation
import Synchronization

/// Why a run stopped sending before its jobs ran out.
public enum StopReason: Sendable, Equatable {
    /// SIGINT or SIGTERM.
    case interrupted
    /// 401 or 403: the key is refused; nothing else will go through.
    case keyRejected(String)
    /// 402: the account is out of credits.
    case outOfCredits(String)
    /// The service stayed out past --outage-limit.
    case serviceDown(since: Date, reason: String)
}

/// A one-way switch that says "start nothing new". The first reason given wins; anyone
/// may wait for it, and waiting ends early on cancellation.
public final class StopSignal: Sendable {
    private struct State {
        var reason: StopReason?
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    public init() {}

    public var reason: StopReason? { state.withLock { $0.reason } }
    public var isStopped: Bool { reason != nil }

    /// Stops; returns false if already stopped.
    @discardableResult
    public func stop(_ reason: StopReason) -> Bool {
        let waiters: [CheckedContinuation<Void, Never>]? = state.withLock { state in
            guard state.reason == nil else { return nil }
            state.reason = reason
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters ?? [] { waiter.resume() }
        return waiters != nil
    }

    /// Returns when stopped, or when the calling task is cancelled.
    public func wait() async {
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.reason != nil || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = state.withLock { $0.waiters.removeValue(forKey: id) }
            continuation?.resume()
        }
    }

    /// Runs `work` unless a stop comes first. Returns what it returns, or nil if stopped (the
    /// work is then cancelled); rethrows what the work throws.
    public func unlessStopped<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T? {
        if isStopped { return nil }
        return try await firstOf(
            { try await work() },
            {
                await self.wait()
                return nil
            })
    }
}
