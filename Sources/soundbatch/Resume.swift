import ArgumentParser
import Foundation
import Logging
import SoundbatchCore

struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Carry on sending a batch from the ledger alone; the CSV file is not needed.",
        discussion: """
            Jobs that were in flight when soundbatch last stopped are held in doubt: the \
            service may have created and charged for them. They are sent again only with \
            --resend-in-doubt. When the batch's callbacks go to `soundbatch webhook` on this \
            ledger (run --webhook-url), each request's callback names it: a job in doubt whose \
            callback comes is settled with its task, never sent again, and --resend-in-doubt \
            waits --doubt-window for the callbacks of recent requests before sending them again.

            Every option not given comes from how the batch was run before: the same service \
            (a batch with tasks at one is never sent elsewhere), the same pace, waiting and \
            saving the audio where it did. An option given again is kept for next time.

            Examples:
              soundbatch resume --batch jobs
              soundbatch resume --batch jobs --max-credits 800
              soundbatch resume --batch jobs --resend-in-doubt
              soundbatch resume --batch jobs --resend-in-doubt --doubt-window 10m
            """)

    @Option(help: "The batch to carry on with.")
    var batch: String

    @Flag(help: "Send the batch's jobs in doubt again. They may then be paid for twice: check your account first.")
    var resendInDoubt = false

    /// The flag's name before 0.5, for scripts written then.
    @Flag(name: .customLong("resend-ambiguous"), help: .hidden)
    var resendAmbiguous = false

    @Option(
        help: ArgumentHelp(
            "With --resend-in-doubt: how long a request whose callback names it is given for that callback (default: the batch's slowest generation and a half more, at least 5m).",
            valueName: "duration"))
    var doubtWindow: DurationArgument?

    @OptionGroup var send: SendOptions
    @OptionGroup var wait: WaitOptions
    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    func validate() throws {
        if doubtWindow != nil && !resendInDoubt && !resendAmbiguous {
            throw ValidationError("--doubt-window goes with --resend-in-doubt.")
        }
    }

    func run() async throws {
        log.bootstrap()
        let code = try await reportingErrors {
            return try await ledger.withOpen(create: false) { ledger in
                try await send.send(
                    batch: batch, ledger: ledger, log: log, resendInDoubt: resendInDoubt || resendAmbiguous,
                    doubtWindow: doubtWindow?.duration, wait: wait)
            }
        }
        if code != Exit.done { throw code }
    }
}
