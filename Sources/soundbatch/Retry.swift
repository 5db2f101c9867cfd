import ArgumentParser
import Foundation
import Logging
import SoundbatchCore

struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send finished jobs of a batch again: those that failed, or named rows (a new take of a sound).",
        discussion: """
            By default it takes the batch's generation_failed and remote_missing jobs, and its \
            failed ones except those refused as invalid (HTTP 400 or 422), which go again only \
            when named with --job or --state failed. --job names a row by its id or its line in \
            the CSV file, and may name a completed job for a new take: its earlier file stays as \
            it is, and the new one is saved as NAME.takeN.wav (N, the row's next take). Nothing is forgotten: every earlier task ID, answer, charge and \
            file stays in the ledger, and the spend report counts what earlier takes cost.

            --flagged takes every job (each take of a row on its own) whose latest sound a \
            check found wrong (`soundbatch status` counts them), or only the findings named.

            It says how many jobs and what they may cost before sending, and asks; without a \
            terminal it needs --yes. They go as `resume` would send them, as the batch was run.

            Examples:
              soundbatch retry --batch jobs
              soundbatch retry --batch jobs --job door-creak --yes
              soundbatch retry --batch jobs --state failed,generation_failed
              soundbatch retry --batch jobs --rejected --yes
              soundbatch retry --batch jobs --flagged
              soundbatch retry --batch jobs --flagged clipped,silent --yes
            """)

    @Option(help: "The batch whose jobs to send again.")
    var batch: String

    @Option(
        help: ArgumentHelp(
            "Which finished states to take, comma-separated: failed, generation_failed, remote_missing, completed.",
            valueName: "states"))
    var state: StatesArgument?

    @Option(
        name: .customLong("job"),
        help: ArgumentHelp("A row to send again, by its id or CSV line (repeatable).", valueName: "row"))
    var jobs: [String] = []

    @Flag(help: "Take the rows whose latest sound was rejected (in `review`, or with `mark reject`).")
    var rejected = false

    @Option(
        name: .customLong("flagged"), defaultAsFlag: FindingsArgument.any,
        help: ArgumentHelp(
            "Take the jobs whose latest sound a check found wrong: any finding, or those named "
                + "(silent, clipped, short, dc_offset, duplicate, gap, unreadable).",
            valueName: "findings"))
    var flagged: FindingsArgument? = nil

    @Flag(help: "Send without asking.")
    var yes = false

    @OptionGroup var send: SendOptions
    @OptionGroup var wait: WaitOptions
    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    func validate() throws {
        try state?.check("--state", allowed: [.failed, .generationFailed, .remoteMissing, .completed])
        try flagged?.check("--flagged")
    }

    func run() async throws {
        log.bootstrap()
        let logger = Logger(label: "soundbatch")
        let code = try await reportingErrors { () async throws -> ExitCode in
            return try await ledger.withOpen(create: false) { ledger in
                let stop = StopSignal()
                let run = BatchRun(service: send.service, ledger: ledger, batch: batch, stop: stop, logger: logger)
                let plan = try await run.planRetry(
                    states: state?.states, rows: jobs, rejected: rejected, flagged: flagged?.kinds)
                if !plan.unknownRows.isEmpty {
                    throw CommandFailure(
                        .usage,
                        "no finished job of batch \"\(batch)\" has the id or CSV line \(plan.unknownRows.joined(separator: ", "))"
                    )
                }
                if plan.jobs.isEmpty {
                    print("\(batch): nothing to retry")
                    return Exit.done
                }
                let byState = Dictionary(grouping: plan.jobs, by: \.state).sorted { $0.key.rawValue < $1.key.rawValue }
                let cost =
                    plan.forecast.map { String(format: "about %.2f credits", $0) }
                    ?? "a cost unknown until the first answer"
                print(
                    "\(batch): \(plan.jobs.count) job\(plan.jobs.count == 1 ? "" : "s") to send again ("
                        + byState.map { "\($0.value.count) \($0.key.rawValue)" }.joined(separator: ", ") + "), \(cost)")
                let found = plan.jobs.reduce(into: [Finding: Int]()) { counts, job in
                    for finding in job.findings { counts[finding, default: 0] += 1 }
                }
                if flagged != nil, !found.isEmpty { print("  a check found them: \(findingsText(found))") }
                if !plan.likelyToFailAgain.isEmpty {
                    print(
                        "  \(plan.likelyToFailAgain.count) were refused as invalid and will likely fail again: "
                            + plan.likelyToFailAgain.prefix(10).map(\.row).joined(separator: ", "))
                }
                guard
                    try confirmed(
                        "Send them again?", yes: yes, because: "retry sends these jobs again and may cost credits")
                else {
                    print("nothing sent")
                    return Exit.done
                }
                let signals = SignalWatcher(stop: stop)
                defer { signals.cancel() }
                let report = try await run.retry(
                    plan, given: send.given.overridden(by: wait.given),
                    key: send.service.keySource(logger: logger),
                    progress: log.quiet ? nil : ProgressReporter.display)
                Summary.print(report)
                return ExitCode(report.exitStatus)
            }
        }
        if code != Exit.done { throw code }
    }
}
