import ArgumentParser
import Foundation
import Logging
import SoundbatchCore

struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Carry on sending a batch from the ledger alone; the CSV file is not needed.",
        discussion: """
            Jobs that were in flight when soundbatch last stopped are held as ambiguous: the \
            service may have created and charged for them. They are sent again only with \
            --resend-ambiguous.

            Every option not given comes from how the batch was run before: the same service \
            (a batch with tasks at one is never sent elsewhere), the same pace, waiting and \
            saving the audio where it did. An option given again is kept for next time.

            Examples:
              soundbatch resume --batch jobs
              soundbatch resume --batch jobs --max-credits 800
              soundbatch resume --batch jobs --resend-ambiguous
            """)

    @Option(help: "The batch to carry on with.")
    var batch: String

    @Flag(help: "Send the batch's ambiguous jobs again. They may then be paid for twice: check your account first.")
    var resendAmbiguous = false

    @OptionGroup var send: SendOptions
    @OptionGroup var wait: WaitOptions
    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    func run() async throws {
        log.bootstrap()
        let code = try await reportingErrors {
            return try await ledger.withOpen(create: false) { ledger in
                try await send.send(
                    batch: batch, ledger: ledger, log: log, resendAmbiguous: resendAmbiguous, wait: wait)
            }
        }
        if code != Exit.done { throw code }
    }
}
