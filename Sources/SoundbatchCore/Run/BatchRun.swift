import Foundation
import Logging

/// The workflow of a batch, from the ledger's lock to the last answer recorded: the one
/// place that decides what a run does before, while and after it sends.
public struct BatchRun: Sendable {
    public var ledger: any LedgerStore
    public var batch: String
    /// Set by Ctrl-C or SIGTERM (or a refused key): no new work starts.
    public var stop: StopSignal
    public var logger: Logger
    /// Where a batch not yet bound to a service goes when not told: `$MUSICGPT_BASE_URL`,
    /// else the API. It never moves a batch that has tasks somewhere.
    public var fallbackBaseURL = MusicGPTClient.defaultBaseURL
    /// Starts the sandbox for batches run against it.
    public var sandbox: (any SandboxLauncher)?
    /// How long a request in doubt whose callback names it (`CallbackToken`) is given for
    /// that callback before `--resend-in-doubt` sends its job again; nil: the batch's
    /// slowest generation so far, and a half more, at least five minutes.
    public var doubtWindow: Duration?

    public init(ledger: any LedgerStore, batch: String, stop: StopSignal, logger: Logger) {
        self.ledger = ledger
        self.batch = batch
        self.stop = stop
        self.logger = logger
    }

    /// The settings a run goes by: what the batch remembers, with what was said now put
    /// over it, and kept for next time. A batch whose tasks are at a service stays there.
    func settle(_ given: BatchSettings, batchID: Int64) async throws -> BatchSettings {
        let remembered = try await ledger.settings(ofBatch: batchID) ?? BatchSettings()
        var asked = given
        if let bound = remembered.service, let service = given.service {
            if case .sandbox = bound, case .sandbox = service {
                asked.service = bound  // the same sandbox, on the ports its tasks know
            } else if bound != service, try await ledger.hasTasks(batchID: batchID) {
                throw BatchRunError.boundElsewhere(batch: batch, boundTo: bound, asked: service)
            }
        }
        var settings = remembered.overridden(by: asked)
        if settings.service == nil { settings.service = .api(baseURL: fallbackBaseURL) }
        if settings != remembered { try await ledger.recordSettings(settings, ofBatch: batchID) }
        return settings
    }

    /// Sends the batch's pending jobs as the batch is run (see `settle`) and, when it
    /// waits, follows them at the same time, so the first sounds arrive before the last
    /// prompt is sent.
    ///
    /// Before anything is sent, this process becomes the batch's only sender, and the jobs
    /// an earlier run left in flight are held in doubt: the service may have made, and
    /// charged for, their tasks.
    public func send(
        _ given: BatchSettings, resendInDoubt: Bool = false, key: @escaping KeySource,
        progress: ProgressDisplay? = nil
    ) async throws -> RunReport {
        try await ledger.withSending(batch: batch) { batchID in
            let report = try await sendHoldingClaim(
                given, batchID: batchID, resendInDoubt: resendInDoubt, key: key, progress: progress)
            return try await rerollingFlagged(after: report, batchID: batchID, key: key, progress: progress)
        }
    }

    /// Confirms the tasks that requests' callbacks named while the service could not confirm
    /// them: each job settled with its task, or, for a task the service does not know, free
    /// to be sent again. One still unconfirmed keeps its job waiting.
    func confirmCallbacks(batchID: Int64, client: MusicGPTClient) async throws {
        var settled = 0
        for callback in try await ledger.unconfirmedCallbacks(batchID: batchID) {
            switch await client.status(taskID: callback.taskID) {
            case let .found(status) where status.taskID == nil || status.taskID == callback.taskID:
                let settlement = try await ledger.settle(
                    jobID: callback.jobID, callbackToken: callback.token, taskID: callback.taskID, status: status,
                    now: Date())
                guard settlement == .settled else { continue }
                try await ledger.recordStatus(jobID: callback.jobID, status, now: Date())
                settled += 1
            case .retryable(404, _, _):
                try await ledger.forgetCallback(token: callback.token)
            default:
                continue
            }
        }
        if settled > 0 {
            logger.notice("\(settled) jobs in doubt settled with the tasks their callbacks named, confirmed now")
        }
    }

    /// Puts the batch's jobs in doubt back in line, at the user's word, but for those whose
    /// callbacks may still come (within the doubt window), and says what became of them;
    /// returns when the window ends, if it holds any.
    func requeueInDoubt(batchID: Int64) async throws -> Date? {
        let window: Duration
        if let doubtWindow {
            window = doubtWindow
        } else {
            window = .seconds(try await Self.taskTimeWithRoom(batchID, ledger, atLeast: 5 * 60))
        }
        let now = Date()
        let since = now.addingTimeInterval(-window.seconds)
        let requeued = try await ledger.requeueInDoubt(batchID: batchID, awaitingSince: since, now: now)
        if requeued.settledByCallback > 0 {
            logger.notice(
                "\(requeued.settledByCallback) jobs whose requests got no answer were settled by their callbacks: never sent again"
            )
        }
        if requeued.resent > 0 { logger.notice("sending \(requeued.resent) jobs in doubt again, as asked") }
        guard requeued.waiting > 0 else { return nil }
        let until = now.addingTimeInterval(window.seconds)
        logger.notice(
            "waiting for the callbacks of \(requeued.waiting) jobs in doubt sent within the doubt window (\(Int(window.seconds)) s)"
        )
        return until
    }

    /// Sends the batch's pending jobs, with this process already the batch's sender.
    func sendHoldingClaim(
        _ given: BatchSettings, batchID: Int64, resendInDoubt: Bool, key: @escaping KeySource,
        progress: ProgressDisplay?
    ) async throws -> RunReport {
        let held = try await ledger.holdInterruptedSubmissions(now: Date())
        if held > 0 {
            logger.warning(
                """
                \(held) jobs were being sent when soundbatch last stopped; \
                they are now in doubt (see `soundbatch status`)
                """
            )
        }
        let remembered = try await settle(given, batchID: batchID)
        let settings = remembered.sendSettings

        var callbacksUntil: Date?
        let (sent, tracked) = try await withService(remembered, batchID: batchID, key: key) {
            baseURL, key, ownCallbacks in
            try await MusicGPTClient.withClient(
                baseURL: baseURL, key: key, timeout: settings.requestTimeout,
                connections: settings.dispatch.concurrency
            ) { client in
                try await confirmCallbacks(batchID: batchID, client: client)
                if resendInDoubt { callbacksUntil = try await requeueInDoubt(batchID: batchID) }
                return try await withDownloader(settings.follow?.download) { downloader in
                    try await dispatch(
                        batchID: batchID, settings: settings, client: client, key: key, downloader: downloader,
                        ownCallbacks: ownCallbacks, progress: progress)
                }
            }
        }
        let status = try await batchStatus()
        let sendOutcome = RunOutcome.afterSending(sent, batch: status, callbacksUntil: callbacksUntil)
        var outcome = sendOutcome
        if let tracked, sendOutcome.finishedSending {
            let followed = RunOutcome.afterTracking(tracked, stopReason: stop.reason)
            if followed != .done { outcome = followed }
        }
        return RunReport(
            batch: batch, sent: sent, tracked: tracked, status: status, sendOutcome: sendOutcome,
            outcome: outcome)
    }

    /// Runs `body` with the service the batch runs at: the API with the user's key, or the
    /// built-in sandbox, started with the batch's earlier tasks and, for a batch that names
    /// no webhook, soundbatch's own receiver of its callbacks (`OwnCallbacks`).
    func withService<T: Sendable>(
        _ settings: BatchSettings, batchID: Int64, key: KeySource,
        _ body: (_ baseURL: String, _ key: APIKey, _ ownCallbacks: OwnCallbacks?) async throws -> T
    ) async throws -> T {
        switch settings.service ?? .api(baseURL: fallbackBaseURL) {
        case let .api(baseURL):
            return try await body(baseURL, try key(), nil)
        case let .sandbox(port, callbackPort):
            guard let sandbox else { throw BatchRunError.noSandbox(batch: batch) }
            // Beside a ledger file; in the folder run from, for a database.
            let stateFile = ledger.isShared ? "soundbatch.sandbox.json" : ledger.location + ".sandbox.json"
            func start(_ ownCallbacks: OwnCallbacks?, callbackPort: Int?) async throws -> T {
                try await sandbox.withSandbox(port: port, stateFile: stateFile) { baseURL, boundPort, key in
                    if boundPort != port || callbackPort != settings.service.flatMap(\.callbackPort) {
                        // A first start, on free ports: keep them for next time.
                        var bound = settings
                        bound.service = .sandbox(port: boundPort, callbackPort: callbackPort)
                        try await ledger.recordSettings(bound, ofBatch: batchID)
                    }
                    logger.info("sandbox listening at \(baseURL)")
                    return try await body(baseURL, key, ownCallbacks)
                }
            }
            guard settings.webhookURL == nil else { return try await start(nil, callbackPort: callbackPort) }
            // The receiver first: the sandbox calls back the tasks made before a stop as it starts.
            return try await OwnCallbacks.serving(ledger: ledger, batchID: batchID, port: callbackPort, logger: logger)
            {
                ownCallbacks, boundPort in
                try await start(ownCallbacks, callbackPort: boundPort)
            }
        }
    }

    /// Sends the jobs, with the tracker taking each accepted one as it comes.
    func dispatch(
        batchID: Int64, settings: SendSettings, client: MusicGPTClient, key: APIKey, downloader: Downloader?,
        ownCallbacks: OwnCallbacks?, progress: ProgressDisplay?
    ) async throws -> (DispatchResult, TrackCounters?) {
        let (accepted, arrival) = AsyncStream.makeStream(of: TrackedJob.self)
        let health = ServiceHealth(limit: settings.dispatch.outageLimit, clock: ContinuousClock(), logger: logger)
        var dispatch = settings.dispatch
        dispatch.sharedQueue = ledger.isShared
        if dispatch.webhookURL == nil, let own = ownCallbacks?.url {
            dispatch.webhookURL = own
            dispatch.callbackTokens = true
        } else if let url = dispatch.webhookURL {
            dispatch.callbackTokens = await WebhookReceiver.writesTo(identity: try await ledger.identity(), url: url)
            if dispatch.callbackTokens {
                logger.info(
                    "callbacks go to a receiver of this ledger: a request left without an answer is settled by its own")
            }
        }
        let dispatcher = Dispatcher(
            ledger: ledger, submitter: client, settings: dispatch,
            clock: ContinuousClock(), stop: stop, logger: logger, health: health,
            sharedPace: try await ledger.sharedPace(forKey: key.fingerprint, .submissions),
            onSubmitted: { arrival.yield($0) })
        let looks = try await ledger.sharedPace(forKey: key.fingerprint, .looks)
        let tracker = settings.follow.map { follow in
            Tracker(
                ledger: ledger, checker: client, settings: adopting(follow.tracking), clock: ContinuousClock(),
                stop: stop, logger: logger, health: health, sharedPace: looks)
        }
        let downloads = DownloadTally()
        let callbacksMayCome: (@Sendable () async throws -> Date?)? =
            ownCallbacks == nil ? nil : { @Sendable [ledger] in try await Self.callbacksMayCome(batchID, ledger) }
        let rate = settings.dispatch.rate
        let shared = ledger.isShared
        let snapshot: @Sendable () -> RunProgress = {
            let (saved, _, failed) = downloads.counts
            let sending = dispatcher.progress
            return RunProgress(
                sending: sending, following: tracker?.progress, saved: saved, saveFailed: failed,
                outageSince: health.downSince,
                likelyEnd: shared
                    ? nil
                    : TimeLeft.likelyEnd(
                        sending: sending.outlook(rate: rate), generating: tracker?.generation, now: Date()))
        }
        return try await Self.showing(progress, snapshot: snapshot) { [ledger, logger] in
            async let tracked: TrackCounters? = {
                guard let tracker else { return nil }
                return try await Self.following(ownCallbacks) { joining, handled in
                    try await Results.follow(
                        batchID: batchID, ledger: ledger, tracker: tracker, downloader: downloader,
                        incoming: accepted, joining: joining,
                        callbacksMayCome: callbacksMayCome,
                        callbacksHandled: handled, downloads: downloads, stop: stop, logger: logger)
                }
            }()
            let result: DispatchResult
            do {
                result = try await dispatcher.run(batchID: batchID)
            } catch {
                arrival.finish()
                _ = try? await tracked
                throw error
            }
            arrival.finish()
            return (result, try await tracked)
        }
    }

    /// Until when the callbacks of the batch's requests in doubt may still come to the run's
    /// own receiver: the latest such request's task could have finished and called back by
    /// half as long again as the batch's slowest task took (a minute at least). Shorter than
    /// the doubt window, after which resending is safe: this is only how long a run that
    /// follows its batch waits at its end before leaving them in doubt.
    static func callbacksMayCome(_ batchID: Int64, _ ledger: any LedgerStore) async throws -> Date? {
        guard let latest = try await ledger.latestRequestAwaitingCallback(batchID: batchID) else { return nil }
        return latest.addingTimeInterval(try await taskTimeWithRoom(batchID, ledger, atLeast: 60))
    }

    /// How long a task of the batch may take to finish and call back, in seconds: half as
    /// long again as its slowest took, and at least `floor`.
    static func taskTimeWithRoom(
        _ batchID: Int64, _ ledger: any LedgerStore, atLeast floor: Double
    ) async throws
        -> Double
    {
        max(floor, (try await ledger.longestGeneration(batchID: batchID) ?? 0) * 1.5)
    }

    /// Runs `tracking` with the jobs `ownCallbacks` settles meanwhile joining it, and a way to
    /// let no more callbacks in and wait for those under way.
    static func following<T: Sendable>(
        _ ownCallbacks: OwnCallbacks?,
        _ tracking: (AsyncStream<TrackedJob>?, _ callbacksHandled: @escaping @Sendable () async -> Void) async throws ->
            T
    ) async throws -> T {
        guard let ownCallbacks else { return try await tracking(nil, {}) }
        let (joining, join) = AsyncStream.makeStream(of: TrackedJob.self)
        ownCallbacks.follow(into: join)
        defer {
            ownCallbacks.follow(into: nil)
            join.finish()
        }
        return try await tracking(joining, { await ownCallbacks.shut() })
    }

    /// Runs `work` with `progress` shown beside it until it ends.
    static func showing<T: Sendable>(
        _ progress: ProgressDisplay?, snapshot: @escaping @Sendable () -> RunProgress,
        _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        guard let progress else { return try await work() }
        // Left unawaited, it is cancelled (the line cleared) and waited for when `work` ends.
        async let _: Void = progress(snapshot)
        return try await work()
    }

    func withDownloader<T>(
        _ settings: DownloadSettings?, _ body: (Downloader?) async throws -> T
    )
        async throws -> T
    {
        guard let settings else { return try await body(nil) }
        return try await Downloader.withDownloader(ledger: ledger, settings: settings) { try await body($0) }
    }

    /// On a shared ledger, a runner also takes on the tasks of runners that died.
    func adopting(_ settings: TrackSettings) -> TrackSettings {
        var settings = settings
        if ledger.isShared { settings.takeOnEvery = .seconds(20) }
        return settings
    }

    func batchStatus() async throws -> BatchStatus {
        try await ledger.status(batch: batch).first ?? BatchStatus(name: batch)
    }
}
