import ArgumentParser
import Foundation
import SoundbatchCore

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the ledger holds: jobs per state and credits, per batch.",
        discussion: """
            Also shows why failed jobs failed, what the pending ones may cost, and how each \
            batch is run.

            Examples:
              soundbatch status
              soundbatch status --batch jobs --json
            """)

    @Option(help: "Show only this batch.")
    var batch: String?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @OptionGroup var ledger: LedgerOption

    func run() async throws {
        let batches = try await reportingErrors {
            try await ledger.withOpen(create: false) { try await $0.status(batch: batch) }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = try encoder.encode(["batches": batches])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        if batches.isEmpty {
            print("The ledger holds no batches yet. Feed it a CSV file: soundbatch run FILE.csv --dry-run")
            return
        }
        for batch in batches {
            print(
                "\(batch.name): \(counted(batch.jobs, "job", "jobs")), "
                    + String(
                        format: "%.2f credits estimated, %.2f charged", batch.creditEstimateTotal,
                        batch.conversionCostTotal))
            let counts = JobState.allCases.filter { batch.count($0) > 0 }.map {
                "\($0.rawValue) \(grouped(batch.count($0)))"
            }
            if !counts.isEmpty { print("  " + counts.joined(separator: ", ")) }
            let sounds = batch.sounds
            if sounds.kept + sounds.rejected + sounds.unreviewed > 0 {
                print("  sounds: \(sounds.kept) kept, \(sounds.rejected) rejected, \(sounds.unreviewed) unreviewed")
            }
            if !batch.findings.isEmpty {
                print(
                    "  checks found, of \(counted(batch.checked, "sound", "sounds")) checked: "
                        + "\(findingsText(batch.findings)); send them again: "
                        + "soundbatch retry --batch \(batch.name) --flagged")
            } else if batch.checked > 0 {
                print("  checks: \(counted(batch.checked, "sound", "sounds")) checked, nothing found")
            }
            if let forecast = Self.forecast(batch.pendingForecast) { print("  " + forecast) }
            for failure in batch.failures.prefix(5) {
                let state = JobState(rawValue: failure.state)?.words ?? failure.state
                print(
                    "\(failure.jobs) \(state): \(failure.reason.isEmpty ? "no reason recorded" : failure.reason)"
                        .wrapped(indent: "  "))
            }
            if batch.failures.count > 5 {
                print("  ... and \(batch.failures.count - 5) other reasons; soundbatch report --jobs lists each job")
            }
            if let settings = batch.settings {
                for line in Self.describe(settings) { print("  " + line) }
            }
            if let note = ReportRenderer.inDoubtNote(batch.totals) { print(note.wrapped(indent: "  ")) }
            if let note = ReportRenderer.callbackNote(batch.totals) { print(note.wrapped(indent: "  ")) }
            if batch.count(.inDoubt) > 0 {
                print(
                    ("\(batch.count(.inDoubt)) in doubt: the service may have created and charged for them; "
                        + "check your account, then `soundbatch resume --batch \(batch.name) --resend-in-doubt` to send them again")
                        .wrapped(indent: "  "))
            }
            if let next = Self.nextStep(batch) { print("next: \(next)".wrapped(indent: "  ")) }
        }
    }

    /// The command that carries the batch on, if anything is left to do.
    static func nextStep(_ batch: BatchStatus) -> String? {
        let name = batch.name.contains(" ") ? "\"\(batch.name)\"" : batch.name
        if batch.count(.pending) > 0 { return "soundbatch resume --batch \(name)" }
        if batch.count(.submitted) > 0 { return "soundbatch track --batch \(name)" }
        if !batch.failures.isEmpty {
            return "soundbatch retry --batch \(name)  (see why: soundbatch report --jobs --batch \(name))"
        }
        return nil
    }

    /// What the pending jobs are forecast to cost, when any are pending.
    static func forecast(_ forecast: PendingForecast) -> String? {
        let pending = forecast.pending
        guard pending > 0 else { return nil }
        guard let credits = forecast.credits, let average = forecast.averageEstimate else {
            return "\(grouped(pending)) pending: their cost is unknown until the service's first answer"
        }
        return String(
            format: "%@ pending: about %.2f credits, at the average estimate so far (%.2f a job)", grouped(pending),
            credits, average)
    }

    /// The settings in force, in lines short enough for a terminal: where, how fast, and
    /// what happens after.
    static func describe(_ remembered: BatchSettings) -> [String] {
        let settings = BatchSettings.defaults.overridden(by: remembered)
        var how = [
            "runs at \(settings.service?.description ?? "the API")",
            "\(settings.rate ?? "?"), burst \(settings.burst ?? 1), \(settings.concurrency ?? 8) at once, "
                + "\(settings.maxAttempts ?? 5) attempts, \(Int(settings.timeout ?? 60)) s timeout"
        ]
        if let limit = settings.maxCredits { how.append(String(format: "at most %.2f credits", limit)) }
        var after: [String] = []
        if let webhook = settings.webhookURL { after.append("callbacks to \(webhook)") }
        if settings.wait == true { after.append("waits for the sounds (looks at \(settings.lookRate ?? "?"))") }
        if let folder = settings.download { after.append("saves them in \(folder)") }
        return [how[0], how.dropFirst().joined(separator: "; ")]
            + (after.isEmpty ? [] : [after.joined(separator: "; ")])
    }
}
