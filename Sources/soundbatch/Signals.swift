import Dispatch
import Foundation
import SoundbatchCore

/// SIGINT and SIGTERM: the first stops new work and lets the work in flight finish (for a
/// run: new submissions); a second SIGINT quits at once (for a run, in-flight jobs become
/// in doubt on the next start).
final class SignalWatcher {
    private let sources: [any DispatchSourceSignal]

    init(
        stop: StopSignal,
        stopping: String = "stopping: no new submissions; waiting for those in flight (Ctrl-C again to quit at once)",
        quitting: String = "quitting at once; jobs in flight will be held in doubt"
    ) {
        // A signal that comes while the watcher is being made waits for it, blocked, rather
        // than meet SIG_IGN and be lost (InterruptTests saw a Ctrl-C at 0.1 s ignored, and the
        // run go on to its end). On Linux, libdispatch catches the signal with its own
        // handler; elsewhere the default action must be turned off first.
        var watched = sigset_t()
        sigemptyset(&watched)
        sigaddset(&watched, SIGINT)
        sigaddset(&watched, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &watched, nil)
        defer { pthread_sigmask(SIG_UNBLOCK, &watched, nil) }
        sources = [SIGINT, SIGTERM].map { number in
            #if !os(Linux)
                signal(number, SIG_IGN)
            #endif
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if stop.stop(.interrupted) {
                    printError(stopping)
                } else if number == SIGINT {
                    printError(quitting)
                    exit(130)
                }
            }
            source.resume()
            return source
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}

/// Ctrl-C and SIGTERM for the commands that send or follow tasks (`run`, `resume`, `track`),
/// watched from the process's first instant (`Soundbatch.main`): an interrupt before the
/// first request, during the feed say, is a stop like any later one, never a kill.
enum Interrupts {
    static let stop = StopSignal()
    static let commands: Set<String> = ["run", "resume", "track", "export"]
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
