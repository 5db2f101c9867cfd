import ArgumentParser
import Foundation
import Logging
import SoundbatchCore

struct Webhook: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive the service's completion callbacks and record them in the ledger.",
        discussion: """
            Give jobs the callback with `run --webhook-url http://HOST:PORT/hook`. A callback for \
            a task the ledger knows updates its job as a status look would; one for an unknown \
            task, a malformed body or one over 64 KB is answered 4xx and changes nothing. It can \
            run beside `track`.
            """)

    @Option(help: ArgumentHelp("The address and port to listen on.", valueName: "host:port"))
    var listen = "127.0.0.1:8787"

    @Option(help: "The path the callbacks are posted to.")
    var path = "/hook"

    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    var hostAndPort: (String, Int)? {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        let host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }

    func validate() throws {
        guard hostAndPort != nil else { throw ValidationError("--listen must look like 127.0.0.1:8787.") }
        guard path.hasPrefix("/") else { throw ValidationError("--path must start with /.") }
    }

    func run() async throws {
        log.bootstrap()
        let logger = Logger(label: "soundbatch.webhook")
        let (host, port) = hostAndPort!
        try await reportingErrors {
            let receiver = WebhookReceiver(ledger: try ledger.open(create: false), path: path)
            var quiet = Logger(label: "soundbatch.webhook.server")
            quiet.logLevel = .warning
            try await servingUntilInterrupted { announceAndWait in
                try await receiver.serve(host: host, port: port, logger: quiet) { event in
                    switch event {
                    case let .recorded(jobID, taskID, state, changed):
                        logger.info(
                            "task \(taskID) (job \(jobID)): \(state.rawValue)\(changed ? "" : ", already recorded")")
                    case let .refused(status, reason):
                        logger.warning("refused a callback (HTTP \(status)): \(reason)")
                    }
                } while: { url in
                    await announceAndWait("listening for callbacks at \(url) (Ctrl-C stops it)")
                }
            }
        }
    }
}
