import ArgumentParser
import Foundation
import SoundbatchCore
import Synchronization

/// One live line on a terminal, a plain line every ten seconds otherwise.
enum ProgressReporter {
    static func whileRunning<C: Clock>(
        _ dispatcher: Dispatcher<C>, rate: Rate, quiet: Bool,
        _ work: @escaping @Sendable () async throws -> DispatchResult
    ) async throws -> DispatchResult where C.Duration == Duration {
        let onTerminal = isatty(STDERR_FILENO) == 1
        let start = ContinuousClock.now
        return try await withThrowingTaskGroup(of: DispatchResult?.self) { group in
            group.addTask { try await work() }
            if !quiet {
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: onTerminal ? .milliseconds(500) : .seconds(10))
                        if Task.isCancelled { break }
                        let line = describe(dispatcher.progress, elapsed: start.duration(to: .now), rate: rate)
                        if onTerminal { LiveLine.shared.show(line) } else { printError(line) }
                    }
                    if onTerminal { LiveLine.shared.clear() }
                    return nil
                }
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw CancellationError()
        }
    }

    static func describe(_ counters: DispatchCounters, elapsed: Duration, rate: Rate) -> String {
        let minutes = max(elapsed.seconds / 60, 1e-9)
        let perMinute = Double(counters.finished) / minutes
        let left = max(counters.total - counters.finished, 0)
        // At the configured rate, or at the rate achieved when the service holds it lower.
        let secondsLeft = max(Double(left) * rate.interval.seconds,
                              counters.finished > 0 ? Double(left) / perMinute * 60 : 0)
        return "\(counters.finished)/\(counters.total) done · "
            + String(format: "%.1f/min · %.2f credits estimated · ", perMinute, counters.creditsEstimated)
            + "429s \(counters.rateLimited) · retries \(counters.retries) · ~\(clock(secondsLeft)) left"
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
        current.withLock { $0 = line; Self.write("\r\u{1B}[K" + line) }
    }

    func clear() {
        current.withLock { $0 = nil; Self.write("\r\u{1B}[K") }
    }

    /// Writes whole lines of text above the live line.
    func writeAbove(_ text: String) {
        current.withLock { line in Self.write(line.map { "\r\u{1B}[K" + text + $0 } ?? text) }
    }

    private static func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}

/// Standard error for the log, above the live line.
struct LogStream: TextOutputStream, Sendable {
    mutating func write(_ text: String) { LiveLine.shared.writeAbove(text) }
}

/// The end of a run: what the batch holds now, and what to do next.
enum Summary {
    static func print(_ result: DispatchResult, batch: String, ledger: Ledger, quiet: Bool) throws -> ExitCode {
        let status = try ledger.status(batch: batch).first
        let counts = JobState.allCases.compactMap { state -> String? in
            guard let count = status?.count(state), count > 0 else { return nil }
            return "\(state.rawValue) \(grouped(count))"
        }
        let c = result.counters
        if !quiet {
            Swift.print("\(batch): this run submitted \(grouped(c.submitted)), failed \(grouped(c.failed)), "
                + "ambiguous \(grouped(c.ambiguous)) (\(c.rateLimited) answers 429, \(c.retries) retries); "
                + String(format: "%.2f credits estimated for the batch", status?.creditEstimateTotal ?? 0))
            Swift.print("  " + counts.joined(separator: ", "))
        }
        let ambiguous = status?.count(.ambiguous) ?? 0
        let resume = "soundbatch resume --batch \(batch)"
        switch result.stopReason {
        case .keyRejected(let error)?:
            printError("the service refused the API key: \(error.withoutFullStop). Jobs not sent stay pending; fix the key, then: \(resume)")
            return Exit.keyRejected
        case .outOfCredits(let error)?:
            printError("the account is out of credits: \(error.withoutFullStop). Top up, then: \(resume)")
            return Exit.resumable
        case .interrupted?:
            printError("interrupted; carry on with: \(resume)")
            return Exit.resumable
        case nil:
            break
        }
        if let budget = result.budget {
            printError(String(format: "stopped at the budget: %.2f credits estimated of --max-credits %.2f; %@ jobs left. ",
                              budget.estimated, budget.limit, grouped(budget.jobsLeft))
                + "Raise --max-credits and run: \(resume) --max-credits N")
            return Exit.resumable
        }
        if ambiguous > 0 {
            printError("\(ambiguous) jobs are ambiguous: the service may have created and charged for them. "
                + "Check your MusicGPT account, then send them again with: \(resume) --resend-ambiguous")
            return Exit.resumable
        }
        if (status?.count(.pending) ?? 0) > 0 { return Exit.resumable }
        if (status?.count(.failed) ?? 0) + (status?.count(.invalid) ?? 0) > 0 { return Exit.someFailed }
        return Exit.done
    }
}

private extension String {
    /// The service's own sentence, to be followed by one of ours.
    var withoutFullStop: String { hasSuffix(".") ? String(dropLast()) : self }
}
