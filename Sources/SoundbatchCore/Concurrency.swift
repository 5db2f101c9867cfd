import Synchronization

/// What `first` or `second` gives, whichever ends first; the other is cancelled. It is
/// waited for (structured concurrency) unless `waitingForTheOther` is false: then it is
/// left to end by itself, for a call that may not heed its cancellation (a database
/// connection cut in the middle of a transaction never answers). A cancellation of the
/// caller cancels both.
public func firstOf<T: Sendable>(
    _ first: @escaping @Sendable () async throws -> T, _ second: @escaping @Sendable () async throws -> T,
    waitingForTheOther: Bool = true
) async throws -> T {
    if waitingForTheOther {
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask(operation: first)
            group.addTask(operation: second)
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }
    let race = Race<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            race.start(continuation, [first, second])
        }
    } onCancel: {
        race.end(.failure(CancellationError()))
    }
}

/// Two tries and one answer: the first to end gives it, once, and the rest are cancelled.
private final class Race<T: Sendable>: Sendable {
    private let state = Mutex<(waiting: CheckedContinuation<T, any Error>?, tries: [Task<Void, Never>])>((nil, []))

    func start(_ continuation: CheckedContinuation<T, any Error>, _ bodies: [@Sendable () async throws -> T]) {
        state.withLock { $0.waiting = continuation }
        let tries = bodies.map { body in
            Task { do { end(.success(try await body())) } catch { end(.failure(error)) } }
        }
        let late = state.withLock { state in
            state.tries = tries
            return state.waiting == nil  // answered while the tries were starting
        }
        if late { for attempt in tries { attempt.cancel() } }
    }

    /// Answers with `result` unless answered already; the tries still going are cancelled.
    func end(_ result: Result<T, any Error>) {
        let (waiting, tries) = state.withLock { state in
            defer { state.waiting = nil }
            return (state.waiting, state.tries)
        }
        guard let waiting else { return }
        for attempt in tries { attempt.cancel() }
        waiting.resume(with: result)
    }
}

/// Runs `body`, then awaits `cleanUp` whether `body` threw or not (a `defer` cannot await):
/// the scoped lifecycles of the HTTP clients, `withClient { }` and `withDownloader { }`.
func withCleanUp<T>(_ cleanUp: () async -> Void, _ body: () async throws -> T) async throws -> T {
    let result: Result<T, Error>
    do { result = .success(try await body()) } catch { result = .failure(error) }
    await cleanUp()
    return try result.get()
}

/// One user at a time, across awaits: a lock a task waits for without blocking a thread
/// (a SQLite ledger's connection, whose transactions span several awaits).
public final class AsyncLock: Sendable {
    public init() {}

    private let state = Mutex<(held: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    public func lock() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let free = state.withLock { state in
                if state.held {
                    state.waiting.append(waiter)
                    return false
                }
                state.held = true
                return true
            }
            if free { waiter.resume() }
        }
    }

    public func unlock() {
        let next = state.withLock { state in
            if state.waiting.isEmpty {
                state.held = false
                return nil as CheckedContinuation<Void, Never>?
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
