import ArgumentParser
import Foundation
import Logging
import SoundbatchCore
import SoundbatchSandbox

struct Review: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Audition a batch's sounds in a browser: keep, reject or re-roll each.",
        discussion: """
            Serves one page for the batch, from the ledger, and prints its address; it runs \
            until Ctrl-C. Every row is there in the sheet's order, with every take: its \
            waveform, length and cost, and a Play button. Keys, as in photo tools: Space \
            plays, J/K or the arrow keys move, P keeps, X rejects, U clears, R re-rolls. \
            Verdicts go to the ledger at once (`soundbatch mark` gives them from the command \
            line; `status` counts them).

            A re-roll shows what it will send and may cost, then sends as `soundbatch retry` \
            does, with the batch's remembered service, pace and download folder (else \
            ./sounds), from this process; the new take appears on the page when it is saved. \
            Its prompt may be edited first. It needs the API key as `run` does, unless the \
            batch runs against the sandbox.

            The page can spend credits, so it is not an open door: it listens on loopback \
            unless told otherwise, and answers only with the secret token in the printed \
            address. Changes are taken only from the page itself.

            Examples:
              soundbatch review --batch jobs
              soundbatch review --batch jobs --listen 127.0.0.1:0
              soundbatch review --batch sfx --ledger postgres://team@db.internal/sounds
            """)

    @Option(help: "The batch to review.")
    var batch: String

    @Option(
        help: ArgumentHelp(
            "The address and port to listen on (port 0 picks a free one); keep it on loopback unless the network is yours.",
            valueName: "host:port"))
    var listen = ListenAddress(host: "127.0.0.1", port: 8790)

    @Option(
        help: ArgumentHelp("A file holding the API key, for re-rolls (default: $MUSICGPT_API_KEY).", valueName: "path"))
    var apiKeyFile: String?

    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    func run() async throws {
        log.bootstrap()
        let logger = Logger(label: "soundbatch")
        try await reportingErrors {
            try await ledger.withOpen(create: false) { ledger in
                let stop = StopSignal()
                // Re-rolls go where the batch runs (a sandbox batch's sandbox is started again).
                var run = BatchRun(ledger: ledger, batch: batch, stop: stop, logger: logger)
                run.sandbox = BuiltInSandbox()
                let review = try await ReviewServer(
                    run: run, key: { [apiKeyFile] in try resolveAPIKey(file: apiKeyFile, logger: logger) },
                    fallbackFolder: FileManager.default.currentDirectoryPath + "/sounds",
                    onRerolled: { Summary.print($0) })
                var quiet = Logger(label: "soundbatch.review.server")
                quiet.logLevel = .warning
                try await servingUntilInterrupted(stop: stop) { announceAndWait in
                    try await review.serve(host: listen.host, port: listen.port, logger: quiet) { address in
                        await announceAndWait("Review \"\(batch)\" at \(address)\n(Ctrl-C stops it)")
                    }
                }
            }
        }
    }
}
