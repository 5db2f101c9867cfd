import Foundation
import Logging

/// How a batch is sent.
public struct SendSettings: Sendable {
    public var dispatch = DispatchSettings()
    /// How long to wait for an answer before a request counts as ambiguous.
    public var requestTimeout: Duration = .seconds(60)
    /// Send the batch's ambiguous jobs again, at the user's explicit request: they may
    /// then be paid for twice.
    public var resendAmbiguous = false
    /// Follow the tasks to their end while sending (`--wait`).
    public var follow: FollowSettings?

    public init() {}
}

/// How a batch's tasks are followed to their end.
public struct FollowSettings: Sendable {
    public var tracking = TrackSettings()
    /// Where to save the audio, if anywhere.
    public var download: DownloadSettings?

    public init() {}
}

/// What a run did, and how it ended.
public struct RunReport: Sendable {
    public var batch: String
    /// What sending did, when the run sent.
    public var sent: DispatchResult?
    /// What following the tasks did, when the run followed them.
    public var tracked: TrackCounters?
    /// The batch in the ledger at the end.
    public var status: BatchStatus
    /// How sending ended, when the run sent.
    public var sendOutcome: RunOutcome?
    /// How the run as a whole ended.
    public var outcome: RunOutcome
}

/// Shows a run's progress while it sends: called once, with a way to read the counters,
/// and cancelled when sending ends.
public typealias ProgressDisplay = @Sendable (_ counters: @escaping @Sendable () -> DispatchCounters) async -> Void

/// The workflow of a batch, from the ledger's lock to the last answer recorded: the one
/// place that decides what a run does before, while and after it sends.
public struct BatchRun: Sendable {
    public var ledger: any LedgerStore
    public var batch: String
    /// Set by Ctrl-C or SIGTERM (or a refused key): no new work starts.
    public var stop: StopSignal
    public var logger: Logger

    public init(ledger: any LedgerStore, batch: String, stop: StopSignal, logger: Logger) {
        self.ledger = ledger
        self.batch = batch
        self.stop = stop
        self.logger = logger
    }

    /// Sends the batch's pending jobs to `service` and, with `settings.follow`, follows
    /// them at the same time, so the first sounds arrive before the last prompt is sent.
    ///
    /// Before anything is sent, this process becomes the batch's only sender, and the jobs
    /// an earlier run left in flight are held as ambiguous: the service may have made, and
    /// charged for, their tasks.
    public func send(
        _ settings: SendSettings, to service: any ServiceEndpoint,
        progress: ProgressDisplay? = nil
    ) async throws -> RunReport {
        let claim = try ledger.claimSending(batch: batch)
        defer { claim.release() }

        let held = try await ledger.holdInterruptedSubmissions(now: Date())
        if held > 0 {
            logger.warning(
                """
                \(held) jobs were being sent when soundbatch last stopped; \
                they are now ambiguous (see `soundbatch status`)
                """
            )
        }
        let batchID = try await ledger.batchID(named: batch)
        if settings.resendAmbiguous {
            let requeued = try await ledger.requeueAmbiguous(batchID: batchID, now: Date())
            if requeued > 0 { logger.notice("sending \(requeued) ambiguous jobs again, as asked") }
        }

        let (sent, tracked) = try await service.withService { baseURL, key in
            try await MusicGPTClient.withClient(
                baseURL: baseURL, key: key, timeout: settings.requestTimeout,
                connections: settings.dispatch.concurrency
            ) { client in
                try await withDownloader(settings.follow?.download) { downloader in
                    try await dispatch(
                        batchID: batchID, settings: settings, client: client, downloader: downloader,
                        progress: progress)
                }
            }
        }
        let status = try await batchStatus()
        let sendOutcome = RunOutcome.afterSending(sent, batch: status)
        var outcome = sendOutcome
        if let tracked, sendOutcome.finishedSending {
            let followed = RunOutcome.afterTracking(tracked, stopReason: nil)
            if followed != .done { outcome = followed }
        }
        return RunReport(
            batch: batch, sent: sent, tracked: tracked, status: status, sendOutcome: sendOutcome,
            outcome: outcome)
    }

    /// Follows the batch's submitted tasks at `service` to their end and saves their audio.
    public func track(_ settings: FollowSettings, at service: RemoteService) async throws -> RunReport {
        let batchID = try await ledger.batchID(named: batch)
        let tracked = try await MusicGPTClient.withClient(baseURL: service.baseURL, key: service.key) { client in
            try await withDownloader(settings.download) { downloader in
                let tracker = Tracker(
                    ledger: ledger, checker: client, settings: settings.tracking,
                    clock: ContinuousClock(), stop: stop, logger: logger)
                return try await Results.follow(
                    batchID: batchID, ledger: ledger, tracker: tracker,
                    downloader: downloader, logger: logger)
            }
        }
        return RunReport(
            batch: batch, sent: nil, tracked: tracked, status: try await batchStatus(), sendOutcome: nil,
            outcome: .afterTracking(tracked, stopReason: stop.reason))
    }

    /// Sends the jobs, with the tracker taking each accepted one as it comes.
    private func dispatch(
        batchID: Int64, settings: SendSettings, client: MusicGPTClient, downloader: Downloader?,
        progress: ProgressDisplay?
    ) async throws -> (DispatchResult, TrackCounters?) {
        let (accepted, arrival) = AsyncStream.makeStream(of: TrackedJob.self)
        let dispatcher = Dispatcher(
            ledger: ledger, submitter: client, settings: settings.dispatch,
            clock: ContinuousClock(), stop: stop, logger: logger,
            onSubmitted: { arrival.yield($0) })
        async let tracked: TrackCounters? = {
            guard let follow = settings.follow else { return nil }
            let tracker = Tracker(
                ledger: ledger, checker: client, settings: follow.tracking, clock: ContinuousClock(),
                stop: stop, logger: logger)
            return try await Results.follow(
                batchID: batchID, ledger: ledger, tracker: tracker, downloader: downloader,
                incoming: accepted, logger: logger)
        }()
        let result: DispatchResult
        do {
            result = try await Self.showing(progress, of: dispatcher) { try await dispatcher.run(batchID: batchID) }
        } catch {
            arrival.finish()
            _ = try? await tracked
            throw error
        }
        arrival.finish()
        return (result, try await tracked)
    }

    /// Runs `work` with `progress` shown beside it until it ends.
    private static func showing<C: Clock>(
        _ progress: ProgressDisplay?, of dispatcher: Dispatcher<C>,
        _ work: @escaping @Sendable () async throws -> DispatchResult
    ) async throws -> DispatchResult {
        guard let progress else { return try await work() }
        return try await withThrowingTaskGroup(of: DispatchResult?.self) { group in
            group.addTask { try await work() }
            group.addTask {
                await progress { dispatcher.progress }
                return nil
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw CancellationError()
        }
    }

    private func withDownloader<T>(
        _ settings: DownloadSettings?, _ body: (Downloader?) async throws -> T
    )
        async throws -> T
    {
        guard let settings else { return try await body(nil) }
        return try await Downloader.withDownloader(ledger: ledger, settings: settings) { try await body($0) }
    }

    private func batchStatus() async throws -> BatchStatus {
        try await ledger.status(batch: batch).first ?? BatchStatus(name: batch)
    }
}
