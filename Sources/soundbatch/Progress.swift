import ArgumentParser
import Foundation
import SoundbatchCore
import Synchronization

/// One live line on a terminal, a plain line every ten seconds otherwise.
enum ProgressReporter {
    /// Draws the progress line until cancelled, then clears it.
    static let display: ProgressDisplay = { counters in
        let onTerminal = isatty(STDERR_FILENO) == 1
        while !Task.isCancelled {
            try? await Task.sleep(for: onTerminal ? .milliseconds(500) : .seconds(10))
            if Task.isCancelled { break }
            let parts = describe(counters(), now: Date())
            if onTerminal {
                LiveLine.shared.show(fit(parts, width: terminalWidth(STDERR_FILENO) - 1))
            } else {
                printError(fit(parts, width: .max))
            }
        }
        if onTerminal { LiveLine.shared.clear() }
    }

    /// A piece of the line, and how long it stays when the line is too wide: the lower
    /// `keep`, the sooner it goes.
    struct Part: Equatable {
        var text: String
        var keep: Int
    }

    /// The whole run in pieces: what is sent, generating, done, saved and failed, and the
    /// time left (`RunProgress.likelyEnd`, counting down between news).
    static func describe(_ progress: RunProgress, now: Date) -> [Part] {
        var parts: [Part] = []
        if let sending = progress.sending {
            if let shared = sending.leftInBatch {
                // Other runners send the batch too: no time is guessed (see `likelyEnd`).
                parts.append(Part(text: "\(sending.finished) sent · \(shared) left in the batch", keep: 8))
            } else {
                parts.append(Part(text: "\(sending.finished)/\(sending.total) sent", keep: 8))
            }
            if let achieved = sending.perMinute {
                parts.append(Part(text: String(format: "%.1f/min", achieved), keep: 2))
            }
            if let allowed = sending.allowedPerMinute {
                parts.append(Part(text: "service allows ~\(Int(allowed.rounded()))/min", keep: 5))
            }
            parts.append(Part(text: String(format: "%.2f credits est.", sending.creditsEstimated), keep: 0))
            if sending.rateLimited > 0 { parts.append(Part(text: "429s \(sending.rateLimited)", keep: 3)) }
            if sending.retries > 0 { parts.append(Part(text: "retries \(sending.retries)", keep: 1)) }
        }
        if let following = progress.following {
            let finished = following.completed + following.generationFailed + following.remoteMissing
            let generating = max(following.followed - finished - following.timedOut, 0)
            parts.append(Part(text: "\(generating) generating", keep: 4))
            parts.append(Part(text: "\(following.completed) done", keep: 6))
        }
        if progress.saved + progress.saveFailed > 0 { parts.append(Part(text: "\(progress.saved) saved", keep: 6)) }
        let failed =
            (progress.sending?.failed ?? 0)
            + (progress.following.map { $0.generationFailed + $0.remoteMissing } ?? 0) + progress.saveFailed
        if failed > 0 { parts.append(Part(text: "\(failed) failed", keep: 7)) }
        if let since = progress.outageSince {
            parts.append(Part(text: "service out since \(Timestamp.timeOfDay(since))", keep: 9))
        } else if let end = progress.likelyEnd {
            let seconds = end.timeIntervalSince(now)
            parts.append(Part(text: seconds >= 0.5 ? "~\(clock(seconds)) left" : "finishing", keep: 9))
        }
        return parts
    }

    /// The parts that fit in `width` columns, in their order: the least useful go first.
    static func fit(_ parts: [Part], width: Int) -> String {
        var kept = parts
        func line() -> String { kept.map(\.text).joined(separator: " · ") }
        while line().count > width, kept.count > 1,
            let least = kept.indices.min(by: { kept[$0].keep < kept[$1].keep })
        {
            kept.remove(at: least)
        }
        return line()
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
    /// Prints what the run did and what to do next.
    static func print(_ report: RunReport) {
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
                    + "in doubt \(grouped(c.inDoubt)) (\(counted(c.rateLimited, "answer", "answers")) 429, "
                    + "\(counted(c.retries, "retry", "retries")))")
            if let allowed = c.allowedPerMinute {
                Swift.print("  the service allowed about \(Int(allowed.rounded()))/min; soundbatch paced at that")
            }
            Swift.print(
                "  " + counts.joined(separator: ", ")
                    + String(format: "; %.2f credits estimated for the batch", status.creditEstimateTotal))
        }
        if let sendOutcome = report.sendOutcome, !sendOutcome.finishedSending {
            advise(sendOutcome, batch: batch, tracking: false, nothingSent: report.sent?.counters.sent == 0)
            return
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
            if report.rerolled > 0 {
                Swift.print(
                    "  re-rolled \(counted(report.rerolled, "sound", "sounds")) a check found wrong (--reroll-flagged)")
            }
            if !status.findings.isEmpty {
                Swift.print(
                    "  checks found: \(findingsText(status.findings)); listen: soundbatch review --batch \(batch); "
                        + "again: soundbatch retry --batch \(batch) --flagged")
            }
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
    }

    /// What the user should do next, on standard error.
    private static func advise(_ outcome: RunOutcome, batch: String, tracking: Bool, nothingSent: Bool = false) {
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
        case .resumable(.interrupted) where nothingSent:
            printError(
                "interrupted before any request was sent; the ledger holds the file's rows; carry on with: \(resume)")
        case .resumable(.interrupted):
            printError("interrupted; carry on with: \(tracking ? track : resume)")
        case let .resumable(.budgetReached(budget)):
            printError(
                String(
                    format: "stopped at the budget: %.2f credits estimated of --max-credits %.2f; %@ jobs left. ",
                    budget.estimated, budget.limit, grouped(budget.jobsLeft))
                    + "Raise --max-credits and run: \(resume) --max-credits N")
        case let .resumable(.inDoubtHeld(count, until?)):
            printError(
                "\(counted(count, "job is", "jobs are")) in doubt, held for the callbacks that may still settle them "
                    + "until \(Timestamp.timeOfDay(until)) (the doubt window); after then, the same command sends "
                    + "those still in doubt again: \(resume) --resend-in-doubt")
        case let .resumable(.inDoubtHeld(count, nil)):
            printError(
                "\(counted(count, "job is", "jobs are")) in doubt: the service may have created and charged for them. "
                    + "Check your MusicGPT account, then send them again with: \(resume) --resend-in-doubt")
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
}

private extension String {
    /// The service's own sentence, to be followed by one of ours.
    var withoutFullStop: String { hasSuffix(".") ? String(dropLast()) : self }
}
