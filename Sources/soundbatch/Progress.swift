import ArgumentParser
import Foundation
import SoundbatchCore
import Synchronization

/// One live line on a terminal, a plain line every ten seconds otherwise.
enum ProgressReporter {
    /// Draws the progress line until cancelled, then clears it.
    static let display: ProgressDisplay = { rate, counters in
        let onTerminal = isatty(STDERR_FILENO) == 1
        while !Task.isCancelled {
            try? await Task.sleep(for: onTerminal ? .milliseconds(500) : .seconds(10))
            if Task.isCancelled { break }
            let line = describe(counters(), rate: rate)
            if onTerminal { LiveLine.shared.show(line) } else { printError(line) }
        }
        if onTerminal { LiveLine.shared.clear() }
    }

    /// One line for the whole run: what is sent, generating, done, saved and failed, and
    /// the time left (sending still to do, then the generation the last tasks still need).
    static func describe(_ progress: RunProgress, rate: Rate) -> String {
        var parts: [String] = []
        var secondsLeft = 0.0
        if let sending = progress.sending {
            if let shared = sending.leftInBatch {
                // Other runners send the batch too: what is left is theirs as much as this
                // one's, at a pace this one does not know, so no time is guessed.
                parts.append("\(sending.finished) sent · \(shared) left in the batch")
                secondsLeft = .nan
            } else {
                let left = max(sending.total - sending.finished, 0)
                // At the configured rate, or at the pace achieved when the service holds it lower.
                let perMinute = min(sending.perMinute ?? rate.perMinute, sending.allowedPerMinute ?? .infinity)
                secondsLeft = Double(left) * 60 / min(perMinute, rate.perMinute)
                parts.append("\(sending.finished)/\(sending.total) sent")
            }
            if let achieved = sending.perMinute { parts.append(String(format: "%.1f/min", achieved)) }
            if let allowed = sending.allowedPerMinute {
                parts.append("service allows ~\(Int(allowed.rounded()))/min")
            }
            parts.append(String(format: "%.2f credits est.", sending.creditsEstimated))
            if sending.rateLimited > 0 { parts.append("429s \(sending.rateLimited)") }
            if sending.retries > 0 { parts.append("retries \(sending.retries)") }
        }
        if let following = progress.following {
            let finished = following.completed + following.generationFailed + following.remoteMissing
            let generating = max(following.followed - finished - following.timedOut, 0)
            parts += ["\(generating) generating", "\(following.completed) done"]
            if generating > 0 {
                let typical = following.completed > 0 ? following.generationSeconds / Double(following.completed) : 10
                secondsLeft += typical
            }
        }
        if progress.saved + progress.saveFailed > 0 { parts.append("\(progress.saved) saved") }
        let failed =
            (progress.sending?.failed ?? 0)
            + (progress.following.map { $0.generationFailed + $0.remoteMissing } ?? 0) + progress.saveFailed
        if failed > 0 { parts.append("\(failed) failed") }
        if let since = progress.outageSince {
            parts.append("service out since \(Timestamp.timeOfDay(since))")
        } else if !secondsLeft.isNaN {
            parts.append("~\(clock(secondsLeft)) left")
        }
        return parts.joined(separator: " · ")
    }

    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        if total >= 3600 { return "\(total / 3600)h\(String(format: "%02d", total % 3600 / 60))m" }
        if total >= 60 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
        return "\(total)s"
    }
}

/// The live progress line on a terminal. Log lines are written above it and it is drawn
/// again below them, so that the two never run into each other.
final class LiveLine: Sendable {
    static let shared = LiveLine()
    private let current = Mutex<String?>(nil)

    func show(_ line: String) {
        // A line wider than the terminal wraps, and the next one could not clear it.
        let fitted = String(line.prefix(max(Self.columns() - 1, 20)))
        current.withLock {
            $0 = fitted
            Self.write("\r\u{1B}[K" + fitted)
        }
    }

    func clear() {
        current.withLock {
            $0 = nil
            Self.write("\r\u{1B}[K")
        }
    }

    /// Writes whole lines of text above the live line.
    func writeAbove(_ text: String) {
        current.withLock { line in Self.write(line.map { "\r\u{1B}[K" + text + $0 } ?? text) }
    }

    private static func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

    /// The terminal's width, read each time (it may be resized); 80 if it cannot be read.
    private static func columns() -> Int { terminalWidth(STDERR_FILENO) }
}

/// The width of the terminal `fd` writes to; 80 when it is not one.
func terminalWidth(_ fd: Int32) -> Int {
    var size = winsize()
    guard ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
    return Int(size.ws_col)
}

/// The end of a run: what the batch holds now, and what to do next.
enum Summary {
    /// Prints what the run did and what to do next; returns the exit code.
    static func print(_ report: RunReport) -> ExitCode {
        let batch = report.batch
        let status = report.status
        if let sent = report.sent {
            let counts = JobState.allCases.compactMap { state -> String? in
                status.count(state) > 0 ? "\(state.rawValue) \(grouped(status.count(state)))" : nil
            }
            let c = sent.counters
            let pace = c.perMinute.map { String(format: " at %.1f/min", $0) } ?? ""
            Swift.print(
                "\(batch): this run submitted \(grouped(c.submitted))\(pace), failed \(grouped(c.failed)), "
                    + "ambiguous \(grouped(c.ambiguous)) (\(counted(c.rateLimited, "answer", "answers")) 429, "
                    + "\(counted(c.retries, "retry", "retries")))")
            if let allowed = c.allowedPerMinute {
                Swift.print("  the service allowed about \(Int(allowed.rounded()))/min; soundbatch paced at that")
            }
            Swift.print(
                "  " + counts.joined(separator: ", ")
                    + String(format: "; %.2f credits estimated for the batch", status.creditEstimateTotal))
        }
        if let sendOutcome = report.sendOutcome, !sendOutcome.finishedSending {
            advise(sendOutcome, batch: batch, tracking: false)
            return exitCode(sendOutcome)
        }
        if let c = report.tracked {
            var line = "\(batch): \(c.completed) completed, \(c.generationFailed) failed to generate"
            if c.remoteMissing > 0 { line += ", \(c.remoteMissing) unknown to the service" }
            if c.downloaded + c.downloadsSkipped + c.downloadsFailed > 0 {
                line +=
                    "; audio saved \(c.downloaded), already there \(c.downloadsSkipped), failed \(c.downloadsFailed)"
            }
            Swift.print(line)
            Swift.print(String(format: "  %.2f credits charged so far", status.conversionCostTotal))
            advise(report.outcome, batch: batch, tracking: true)
        } else if status.count(.submitted) > 0 {
            // Sent without waiting: the sounds are still being made.
            Swift.print(
                "  generating now; follow and save them with: soundbatch track --batch \(batch) --download DIR"
            )
        }
        let failed = JobState.failedForGood.map(status.count).reduce(0, +)
        if report.outcome == .someFailed && failed > 0 {
            Swift.print(
                "  \(counted(failed, "job", "jobs")) failed for good; why: soundbatch report --jobs --batch \(batch); "
                    + "again: soundbatch retry --batch \(batch)")
        }
        return exitCode(report.outcome)
    }

    /// What the user should do next, on standard error.
    private static func advise(_ outcome: RunOutcome, batch: String, tracking: Bool) {
        let resume = "soundbatch resume --batch \(batch)"
        let track = "soundbatch track --batch \(batch)"
        switch outcome {
        case let .keyRejected(error) where tracking:
            printError("the service refused the API key: \(error)")
        case let .keyRejected(error):
            printError(
                "the service refused the API key: \(error.withoutFullStop). Jobs not sent stay pending; "
                    + "fix the key, then: \(resume)"
            )
        case let .resumable(.outOfCredits(error)):
            printError("the account is out of credits: \(error.withoutFullStop). Top up, then: \(resume)")
        case .resumable(.interrupted):
            printError("interrupted; carry on with: \(tracking ? track : resume)")
        case let .resumable(.budgetReached(budget)):
            printError(
                String(
                    format: "stopped at the budget: %.2f credits estimated of --max-credits %.2f; %@ jobs left. ",
                    budget.estimated, budget.limit, grouped(budget.jobsLeft))
                    + "Raise --max-credits and run: \(resume) --max-credits N")
        case let .resumable(.ambiguousHeld(count)):
            printError(
                "\(counted(count, "job is", "jobs are")) ambiguous: the service may have created and charged for them. "
                    + "Check your MusicGPT account, then send them again with: \(resume) --resend-ambiguous")
        case let .resumable(.serviceDown(since, reason)):
            printError(
                "the service has not answered since \(Timestamp.timeOfDay(since)) (\(reason)); "
                    + "stopped at --outage-limit. Jobs not sent stay pending; when it is back: "
                    + (tracking ? track : resume))
        case let .resumable(.tasksRunning(count)):
            printError("\(counted(count, "task is", "tasks are")) still running; look again later with: \(track)")
        case .resumable(.pendingLeft), .someFailed, .done:
            break
        }
    }

    static func exitCode(_ outcome: RunOutcome) -> ExitCode {
        switch outcome {
        case .done: Exit.done
        case .someFailed: Exit.someFailed
        case .resumable: Exit.resumable
        case .keyRejected: Exit.keyRejected
        }
    }
}

private extension String {
    /// The service's own sentence, to be followed by one of ours.
    var withoutFullStop: String { hasSuffix(".") ? String(dropLast()) : self }
}
