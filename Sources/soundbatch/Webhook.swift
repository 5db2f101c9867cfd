import ArgumentParser
import Foundation
import Logging
import SoundbatchCore

struct Webhook: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive the service's completion callbacks and record them in the ledger.",
        discussion: """
            Give jobs the callback with `run --webhook-url http://HOST:PORT/hook`. A callback is \
            taken as a hint, since anyone who reaches the port can post one: its task is looked \
            up at the service its batch runs at (with the key from $MUSICGPT_API_KEY or \
            --api-key-file), and only what that answer says is recorded, as a status look would \
            be. Nothing a callback's body says is written, and nothing is fetched from a URL it \
            names. One that cannot be confirmed is answered 503; one for an unknown task, a \
            malformed body or one over 64 KB is answered 4xx. Those change nothing. It can run \
            beside `track`, which then looks no more at the tasks it has recorded.

            It also settles requests in doubt. A run whose --webhook-url reaches this receiver \
            asks it, at start, which ledger it writes to (a GET of the path answers with the \
            ledger's identity); when it is the run's, each request carries a token of its own in \
            its callback URL. A callback naming a request whose job is in doubt (it got no \
            answer) settles the job with the task, once the service confirms it; if the service \
            cannot confirm it then, the callback is kept for the next run to confirm, and the \
            job is not sent again meanwhile.

            Examples:
              soundbatch webhook --listen 0.0.0.0:8787
              soundbatch run jobs.csv --webhook-url https://hooks.example.com/hook --wait
            """)

    @Option(help: ArgumentHelp("The address and port to listen on.", valueName: "host:port"))
    var listen = ListenAddress(host: "127.0.0.1", port: 8787)

    @Option(help: "The path the callbacks are posted to.")
    var path = "/hook"

    @Option(help: ArgumentHelp("A file holding the API key (default: $MUSICGPT_API_KEY).", valueName: "path"))
    var apiKeyFile: String?

    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard path.hasPrefix("/") else { throw ValidationError("--path must start with /.") }
    }

    func run() async throws {
        log.bootstrap()
        let logger = Logger(label: "soundbatch.webhook")
        let (host, port) = (listen.host, listen.port)
        try await reportingErrors {
            return try await ledger.withOpen(create: false) { ledger in
                var quiet = Logger(label: "soundbatch.webhook.server")
                quiet.logLevel = .warning
                let key: KeySource = { [apiKeyFile] in try resolveAPIKey(file: apiKeyFile, logger: logger) }
                try await BoundServiceLookups.with(ledger: ledger, key: key) { lookups in
                    let receiver = WebhookReceiver(ledger: ledger, confirmer: lookups, path: path)
                    try await servingUntilInterrupted { announceAndWait in
                        try await receiver.serve(host: host, port: port, logger: quiet) { event in
                            let (level, message) = event.logged
                            logger.log(level: level, "\(message)")
                        } while: { url in
                            await announceAndWait("listening for callbacks at \(url) (Ctrl-C stops it)")
                        }
                    }
                }
            }
        }
    }
}
