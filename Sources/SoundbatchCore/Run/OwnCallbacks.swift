import Foundation
import Logging
import Serving
import Synchronization

/// The receiver soundbatch starts on loopback beside the built-in sandbox (`run --sandbox`),
/// for the callbacks of a batch that names no webhook of its own. Each request then carries
/// a token of its own, so a request that got no answer is settled by its own callback and
/// never paid twice, without the user setting a receiver up. It confirms and records only
/// those callbacks; every other one is left to the run's looks (`settlesOnly`), so no status
/// look is spent twice.
///
/// Its port is kept with the batch: the sandbox, started again after a stop, calls back the
/// tasks made before it, and those callbacks must find a receiver there.
final class OwnCallbacks: CallbackDoor {
    private let ledger: any LedgerStore
    private let batchID: Int64
    private let logger: Logger
    /// The callback URL, once listening.
    private let address = Mutex<String?>(nil)
    /// Where the jobs it settles go to be followed: the running tracker's arrivals.
    private let follower = Mutex<AsyncStream<TrackedJob>.Continuation?>(nil)
    /// Callbacks let in and not yet handled, whether it lets more in, and who waits for it to
    /// be shut (`shut()`).
    private let door = Mutex<(inside: Int, shut: Bool, waiting: [CheckedContinuation<Void, Never>])>((0, false, []))

    private init(ledger: any LedgerStore, batchID: Int64, logger: Logger) {
        self.ledger = ledger
        self.batchID = batchID
        self.logger = logger
    }

    /// The URL the batch's requests are called back at.
    var url: String? { address.withLock { $0 } }

    /// Listens on `port` (else a free one; another one, with a warning, when that one is
    /// taken) while `body` runs; `body` gets the receiver and the port it listens on.
    static func serving<T: Sendable>(
        ledger: any LedgerStore, batchID: Int64, port: Int?, logger: Logger,
        _ body: (OwnCallbacks, _ boundPort: Int) async throws -> T
    ) async throws -> T {
        let callbacks = OwnCallbacks(ledger: ledger, batchID: batchID, logger: logger)
        var quiet = logger
        quiet.logLevel = .warning
        let sandboxKey: KeySource = { .sandbox }
        return try await BoundServiceLookups.with(ledger: ledger, key: sandboxKey) { lookups in
            let receiver = WebhookReceiver(ledger: ledger, confirmer: lookups, settlesOnly: true)
            func serve(on port: Int) async throws -> T {
                try await receiver.serve(host: "127.0.0.1", port: port, logger: quiet, door: callbacks) { event in
                    await callbacks.heard(event)
                } while: { url in
                    callbacks.address.withLock { $0 = url }
                    let bound = URL(string: url)?.port ?? port
                    return try await body(callbacks, bound)
                }
            }
            guard let port, port != 0 else { return try await serve(on: 0) }
            do {
                return try await serve(on: port)
            } catch let error as CouldNotListen where error.portTaken && error.port == port {
                logger.warning(
                    "port \(port), where this batch's callbacks come, is taken; listening on another: callbacks of tasks made before this run will not reach it"
                )
                return try await serve(on: 0)
            }
        }
    }

    /// Jobs it settles, from now on, join `arrivals` (a running tracker's; nil: none runs).
    func follow(into arrivals: AsyncStream<TrackedJob>.Continuation?) {
        follower.withLock { $0 = arrivals }
    }

    func enter() -> Bool {
        door.withLock { door in
            if door.shut { return false }
            door.inside += 1
            return true
        }
    }

    func leave() {
        let waiting = door.withLock { door in
            door.inside -= 1
            guard door.inside == 0 else { return [CheckedContinuation<Void, Never>]() }
            defer { door.waiting = [] }
            return door.waiting
        }
        for waiter in waiting { waiter.resume() }
    }

    /// Lets no more callbacks in, and returns once those let in are handled: after it, no
    /// callback completes a job the run has stopped following (the run's last sweep of
    /// sounds to save would miss it); later ones come again to the next run.
    func shut() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let handled = door.withLock { door in
                door.shut = true
                if door.inside == 0 { return true }
                door.waiting.append(waiter)
                return false
            }
            if handled { waiter.resume() }
        }
    }

    private func heard(_ event: WebhookReceiver.Event) async {
        let (level, message) = event.logged
        logger.log(level: level, "\(message)")
        guard case let .settled(jobID, taskID, .settled) = event, let arrivals = follower.withLock({ $0 }) else {
            return
        }
        // Still running: followed as it is; completed already: its look finds that, and saves it.
        if let job = try? await ledger.submittedJobs(batchID: batchID).first(where: { $0.id == jobID }) {
            arrivals.yield(job)
        } else if let audio = try? await ledger.audioJobs(batchID: batchID).first(where: { $0.id == jobID }) {
            arrivals.yield(TrackedJob(id: jobID, row: audio.row, taskID: taskID, submittedAt: Date(), eta: nil))
        }
    }
}
