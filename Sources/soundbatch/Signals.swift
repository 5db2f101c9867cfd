import Foundation
import SoundbatchCore
import Synchronization

/// SIGINT and SIGTERM: the first stops new work and lets the work in flight finish (for a
/// run: new submissions); a second SIGINT quits at once (for a run, in-flight jobs become
/// in doubt on the next start).
final class SignalWatcher {
    init(
        stop: StopSignal, stopping: String = Interrupts.sending.stopping, quitting: String = Interrupts.sending.quitting
    ) {
        Signals.handle { number in
            if stop.stop(.interrupted) {
                printError(stopping)
            } else if number == SIGINT {
                printError(quitting)
                exit(130)
            }
        }
        // Any that came while they were held (from main's first instruction) come now.
        Signals.release()
    }

    func cancel() { Signals.handle(nil) }
}

/// The process's SIGINT and SIGTERM, taken without a window in which one is lost: held
/// (blocked) from `main`'s first instruction, in its thread and every thread made after it,
/// so that one that comes early waits, even when the parent set it to be ignored (a blocked
/// signal is never discarded); then taken by a handler of soundbatch's own, which only writes
/// the signal's number to a pipe (all a handler may safely do), read by a thread that calls
/// the watcher's handler. (libdispatch's signal sources arm themselves after `resume`
/// returns, on a thread of their own: a signal let through in between was lost, 1 in 16
/// Ctrl-Cs sent at a run's first instant.)
enum Signals {
    private static let watched: [Int32] = [SIGINT, SIGTERM]
    /// What a signal taken does; nil: what a signal does by default (the process ends).
    private static let current = Mutex<(@Sendable (Int32) -> Void)?>(nil)

    /// Holds SIGINT and SIGTERM until `release`: the first thing `main` does.
    static func hold() { mask(SIG_BLOCK) }

    /// Lets them through: to the handler a watcher set, else to their default action.
    static func release() { mask(SIG_UNBLOCK) }

    /// Calls `handler` with each signal taken from now on; nil gives them back their default.
    static func handle(_ handler: (@Sendable (Int32) -> Void)?) {
        _ = installed
        current.withLock { $0 = handler }
    }

    private static func mask(_ how: Int32) {
        var set = sigset_t()
        sigemptyset(&set)
        for number in watched { sigaddset(&set, number) }
        pthread_sigmask(how, &set, nil)
    }

    /// The handler, and the thread that reads what it writes: made once.
    private static let installed: Void = {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { return }
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        signalPipe = ends[1]
        let readEnd = ends[0]
        let reader = Thread {
            var number: UInt8 = 0
            while read(readEnd, &number, 1) == 1 {
                if let handler = current.withLock({ $0 }) {
                    handler(Int32(number))
                } else {
                    // No watcher now: as if soundbatch had none.
                    signal(Int32(number), SIG_DFL)
                    release()
                    raise(Int32(number))
                }
            }
        }
        reader.start()
        for number in watched {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipe, &byte, 1)
            }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
    }()
}

/// The pipe's write end, for the signal handler (which can capture nothing).
nonisolated(unsafe) private var signalPipe: Int32 = -1

/// Ctrl-C and SIGTERM for the commands that send or follow tasks (`run`, `resume`, `track`),
/// watched from the process's first instant (`Soundbatch.main`): an interrupt before the
/// first request, during the feed say, is a stop like any later one, never a kill.
enum Interrupts {
    static let stop = StopSignal()
    /// The commands a first Ctrl-C stops gracefully, and what each says then, and on a second.
    static let commands: [String: (stopping: String, quitting: String)] = [
        "run": sending, "resume": sending,
        "track": ("stopping: no new looks or downloads (Ctrl-C again to quit at once)", "quitting at once"),
        "export": ("stopping: finishing the files being written (Ctrl-C again to quit at once)", "quitting at once"),
        "check": ("stopping: finishing the sounds being measured (Ctrl-C again to quit at once)", "quitting at once")
    ]
    static let sending = (
        stopping: "stopping: no new submissions; waiting for those in flight (Ctrl-C again to quit at once)",
        quitting: "quitting at once; jobs in flight will be held in doubt"
    )
}

/// For a command that serves HTTP until stopped. `serve` is handed `announceAndWait`, to call
/// once listening: it prints where, at once (a script may be reading it through a pipe), and
/// returns on the first SIGINT or SIGTERM, after which the server answers what it has taken.
/// A second Ctrl-C quits at once.
func servingUntilInterrupted<T>(
    stop: StopSignal = StopSignal(),
    _ serve: (_ announceAndWait: (_ announcement: String) async -> Void) async throws -> T
)
    async throws -> T
{
    let signals = SignalWatcher(
        stop: stop, stopping: "stopping: answering the requests already taken (Ctrl-C again to quit at once)",
        quitting: "quitting at once")
    defer { signals.cancel() }
    return try await serve { announcement in
        print(announcement)
        fflush(nil)
        await stop.wait()
    }
}
