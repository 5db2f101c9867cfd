import Foundation

/// The re-rolls asked for on a review page, sent one at a time inside the review's process
/// through the path `soundbatch retry` takes (`BatchRun.retry`), with the batch's remembered
/// settings, following the new tasks to their end and saving their sounds.
actor Rerolls {
    /// Where re-rolling stands, for the page.
    struct Status: Sendable, Encodable {
        var busy = false
        /// The jobs of the re-roll under way, else of the last one.
        var jobs: [Int64] = []
        var sent = 0
        var generating = 0
        var saved = 0
        var failed = 0
        /// What is happening, or how the last re-roll ended, in words.
        var message = ""
        /// Re-rolls ended since the review began: the page reads its rows again when it grows.
        var ended = 0
    }

    private let run: BatchRun
    private let key: KeySource
    /// Following and saving, over what the batch remembers.
    private let given: BatchSettings
    private let onEnded: @Sendable (RunReport) -> Void
    private let plans: AsyncStream<RetryPlan>
    private let waiting: AsyncStream<RetryPlan>.Continuation
    private var status = Status()
    private var progress: (@Sendable () -> RunProgress)?

    init(
        run: BatchRun, key: @escaping KeySource, given: BatchSettings, onEnded: @escaping @Sendable (RunReport) -> Void
    ) {
        self.run = run
        self.key = key
        self.given = given
        self.onEnded = onEnded
        (plans, waiting) = AsyncStream.makeStream(of: RetryPlan.self)
    }

    /// Sends the plan's jobs, unless a re-roll is under way: then false.
    func start(_ plan: RetryPlan) -> Bool {
        guard !status.busy else { return false }
        status = Status(
            busy: true, jobs: plan.jobs.map(\.id), message: "Sending \(rows(plan.jobs.count))", ended: status.ended)
        waiting.yield(plan)
        return true
    }

    var current: Status {
        guard status.busy, let progress else { return status }
        var now = status
        let reading = progress()
        let following = reading.following
        now.sent = reading.sending?.submitted ?? 0
        now.saved = reading.saved
        now.failed =
            (reading.sending?.failed ?? 0) + (following.map { $0.generationFailed + $0.remoteMissing } ?? 0)
            + reading.saveFailed
        if let following {
            let finished = following.completed + following.generationFailed + following.remoteMissing
            now.generating = max(following.followed - finished, 0)
        }
        now.message =
            "Re-rolling \(rows(status.jobs.count)): \(now.sent) sent, \(now.generating) generating, \(now.saved) saved"
            + (now.failed > 0 ? ", \(now.failed) failed" : "")
        return now
    }

    /// Sends the plans one by one until `finish`; a stop (Ctrl-C) ends the one under way as
    /// it ends a run.
    nonisolated func work() async {
        for await plan in plans { await send(plan) }
    }

    func finish() { waiting.finish() }

    private func send(_ plan: RetryPlan) async {
        let display: ProgressDisplay = { reading in
            await self.watch(reading)
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
        }
        do {
            let report = try await run.retry(plan, given: given, key: key, progress: display)
            status.message = Self.words(report, rows: plan.jobs.count)
            onEnded(report)
        } catch {
            status.message = "The re-roll stopped: \(error)"
            run.logger.error("the re-roll stopped: \(error)")
        }
        progress = nil
        status.busy = false
        status.ended += 1
    }

    private func watch(_ reading: @escaping @Sendable () -> RunProgress) { progress = reading }

    private func rows(_ count: Int) -> String { count == 1 ? "1 row" : "\(count) rows" }

    /// How a re-roll ended, in a sentence for the page.
    static func words(_ report: RunReport, rows count: Int) -> String {
        let tracked = report.tracked ?? TrackCounters()
        let failed =
            tracked.generationFailed + tracked.remoteMissing + tracked.downloadsFailed
            + (report.sent?.counters.failed ?? 0)
        let made = "\(tracked.completed) new sound\(tracked.completed == 1 ? "" : "s")"
        switch report.outcome {
        case .done, .someFailed:
            return "Re-rolled \(count == 1 ? "1 row" : "\(count) rows"): \(made)"
                + (failed > 0 ? ", \(failed) failed" : "")
        case let .keyRejected(error):
            return "The service refused the API key: \(error)"
        case .resumable:
            return
                "Stopped before the end (\(made) so far); `soundbatch resume --batch \(report.batch) --wait` carries on"
        }
    }
}
