import Dispatch
import Foundation
import SoundbatchCore

/// SIGINT and SIGTERM: the first stops new submissions and lets those in flight finish;
/// a second SIGINT quits at once (in-flight jobs become ambiguous on the next start).
final class SignalWatcher {
    private let sources: [any DispatchSourceSignal]

    init(stop: StopSignal) {
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if stop.stop(.interrupted) {
                    printError("stopping: no new submissions; waiting for those in flight (Ctrl-C again to quit at once)")
                } else if number == SIGINT {
                    printError("quitting at once; jobs in flight will be held as ambiguous")
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
