import Foundation
import Logging

/// How a batch is sent.
public struct SendSettings: Sendable {
    public var dispatch = DispatchSettings()
    /// How long to wait for an answer before a request counts as ambiguous.
    public var requestTimeout: Duration = .seconds(60)
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

/// Where a whole run stands: sending, generating, saving.
public struct RunProgress: Sendable {
    /// While the run sends.
    public var sending: DispatchCounters?
    /// While it follows the tasks.
    public var following: TrackCounters?
    public var saved = 0
    public var saveFailed = 0
    /// When the service stopped answering, while it is out.
    public var outageSince: Date?
    /// When the run will likely end (`TimeLeft`); nil when no time can be guessed (other
    /// runners share the queue at a pace this one does not know).
    public var likelyEnd: Date?
}

/// Shows a run's progress: called once, with a way to read where the run stands, and
/// cancelled when the run ends.
public typealias ProgressDisplay = @Sendable (_ progress: @escaping @Sendable () -> RunProgress) async -> Void

/// What a retry would send again.
public struct RetryPlan: Sendable {
    public var jobs: [RetryCandidate]
    /// Credits the new takes may cost: each job's earlier estimate, else the batch's
    /// largest; nil while the batch has no estimate at all.
    public var forecast: Double?
    /// Jobs the service refused as invalid (400, 422): the same request will likely fail again.
    public var likelyToFailAgain: [RetryCandidate]
    /// Rows asked for that name no finished job of the batch.
    public var unknownRows: [String]
}

extension RetryCandidate {
    /// Refused for what the request said (400, 422): sending it again will likely fail again.
    public var refusedAsInvalid: Bool { state == .failed && [400, 422].contains(lastHTTPStatus ?? 0) }
}

/// Where the API key comes from, asked only when a run goes to the API.
public typealias KeySource = @Sendable () throws -> APIKey

/// Starts the built-in sandbox for a run. The command line hands one in, so that the core
/// holds no server code.
public protocol SandboxLauncher: Sendable {
    /// Runs `body` with a sandbox on loopback at `port` (0: any free one) whose tasks are
    /// kept in `stateFile`; `body` gets its base URL, its port and a key it takes.
    func withSandbox<T: Sendable>(
        port: Int, stateFile: String, _ body: (_ baseURL: String, _ port: Int, _ key: APIKey) async throws -> T
    ) async throws -> T
}

/// Why a run would not start.
public enum BatchRunError: Error, Equatable, CustomStringConvertible {
    /// The batch's tasks are at one service and the run was pointed at another.
    case boundElsewhere(batch: String, boundTo: ServiceAddress, asked: ServiceAddress)
    /// The batch was run against the built-in sandbox, and this command cannot start one.
    case noSandbox(batch: String)

    public var description: String {
        switch self {
        case let .boundElsewhere(batch, bound, asked):
            "batch \"\(batch)\" has tasks at \(bound); they can only be tracked, and must only be resent, "
                + "there, not at \(asked). Leave out --base-url and --sandbox to carry on where the batch runs, "
                + "or feed the rows into a new batch with --batch"
        case let .noSandbox(batch):
            "batch \"\(batch)\" runs against the built-in sandbox, which this command cannot start"
        }
    }
}

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

    public init(ledger: any LedgerStore, batch: String, stop: StopSignal, logger: Logger) {
        self.ledger = ledger
        self.batch = batch
        self.stop = stop
        self.logger = logger
    }

    /// The settings a run goes by: what the batch remembers, with what was said now put
    /// over it, and kept for next time. A batch whose tasks are at a service stays there.
    private func settle(_ given: BatchSettings, batchID: Int64) async throws -> BatchSettings {
        let remembered = try await ledger.settings(ofBatch: batchID) ?? BatchSettings()
        var asked = given
        if let bound = remembered.service, let service = given.service {
            if case .sandbox = bound, case .sandbox = service {
                asked.service = bound  // the same sandbox, on the port its tasks know
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
    /// an earlier run left in flight are held as ambiguous: the service may have made, and
    /// charged for, their tasks.
    public func send(
        _ given: BatchSettings, resendAmbiguous: Bool = false, key: @escaping KeySource,
        progress: ProgressDisplay? = nil
    ) async throws -> RunReport {
        try await ledger.withSending(batch: batch) {
            try await sendHoldingClaim(given, resendAmbiguous: resendAmbiguous, key: key, progress: progress)
        }
    }

    /// Sends a new take of each job in `plan` (see `planRetry`), as `send` would: the
    /// current take of each is kept in the ledger, and a completed job's file is moved
    /// aside (`door.take1.wav`), never overwritten.
    public func retry(
        _ plan: RetryPlan, given: BatchSettings, key: @escaping KeySource, progress: ProgressDisplay? = nil
    ) async throws -> RunReport {
        try await ledger.withSending(batch: batch) {
            try await retryHoldingClaim(plan, given: given, key: key, progress: progress)
        }
    }

    private func retryHoldingClaim(
        _ plan: RetryPlan, given: BatchSettings, key: @escaping KeySource, progress: ProgressDisplay?
    ) async throws -> RunReport {
        var renamed: [Int64: String] = [:]
        for job in plan.jobs where job.state == .completed {
            guard let path = job.downloadPath, FileManager.default.fileExists(atPath: path) else { continue }
            let aside = Self.takeName(for: path)
            guard rename(path, aside) == 0 else {
                throw FileError(path: path, errno: errno)
            }
            renamed[job.id] = aside
        }
        let moved = try await ledger.startNewTakes(jobIDs: plan.jobs.map(\.id), renamedFiles: renamed, now: Date())
        logger.notice("\(moved) job\(moved == 1 ? " is" : "s are") pending again, for a new take")
        return try await sendHoldingClaim(given, resendAmbiguous: false, key: key, progress: progress)
    }

    /// `door.wav` -> `door.take1.wav`, or the first such name not taken.
    static func takeName(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let stem = url.deletingPathExtension().path
        let ext = url.pathExtension.isEmpty ? "" : "." + url.pathExtension
        var take = 1
        while FileManager.default.fileExists(atPath: "\(stem).take\(take)\(ext)") { take += 1 }
        return "\(stem).take\(take)\(ext)"
    }

    /// Which finished jobs a retry sends again, what they may cost, and which will likely
    /// fail again. By default: generation failures, tasks the service lost, and jobs failed
    /// for a reason a retry can fix (not a 400 or 422, which only `states` or `rows` take).
    public func planRetry(states: Set<JobState>?, rows: [String]) async throws -> RetryPlan {
        let batchID = try await ledger.batchID(named: batch)
        let all = try await ledger.retryCandidates(
            batchID: batchID, states: JobState.finished)
        var chosen: [Int64: RetryCandidate] = [:]
        var unknown: [String] = []
        for row in rows {
            let named = all.filter { $0.rowKey == row || String($0.line) == row }
            if named.isEmpty { unknown.append(row) }
            for job in named { chosen[job.id] = job }
        }
        if let states {
            for job in all where states.contains(job.state) { chosen[job.id] = job }
        } else if rows.isEmpty {
            for job in all where job.state != .completed && !job.refusedAsInvalid { chosen[job.id] = job }
        }
        let jobs = chosen.values.sorted { $0.id < $1.id }
        let largest = try await ledger.creditState(batchID: batchID).largest
        let estimates = jobs.map { $0.creditEstimate ?? largest }
        return RetryPlan(
            jobs: jobs,
            forecast: estimates.contains(nil) ? nil : estimates.compactMap { $0 }.reduce(0, +),
            likelyToFailAgain: jobs.filter(\.refusedAsInvalid), unknownRows: unknown)
    }

    /// Sends the batch's pending jobs, with this process already the batch's sender.
    private func sendHoldingClaim(
        _ given: BatchSettings, resendAmbiguous: Bool, key: @escaping KeySource, progress: ProgressDisplay?
    ) async throws -> RunReport {
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
        let remembered = try await settle(given, batchID: batchID)
        let settings = remembered.sendSettings
        if resendAmbiguous {
            let requeued = try await ledger.requeueAmbiguous(batchID: batchID, now: Date())
            if requeued > 0 { logger.notice("sending \(requeued) ambiguous jobs again, as asked") }
        }

        let (sent, tracked) = try await withService(remembered, batchID: batchID, key: key) { baseURL, key in
            try await MusicGPTClient.withClient(
                baseURL: baseURL, key: key, timeout: settings.requestTimeout,
                connections: settings.dispatch.concurrency
            ) { client in
                try await withDownloader(settings.follow?.download) { downloader in
                    try await dispatch(
                        batchID: batchID, settings: settings, client: client, key: key, downloader: downloader,
                        progress: progress)
                }
            }
        }
        let status = try await batchStatus()
        let sendOutcome = RunOutcome.afterSending(sent, batch: status)
        var outcome = sendOutcome
        if let tracked, sendOutcome.finishedSending {
            let followed = RunOutcome.afterTracking(tracked, stopReason: stop.reason)
            if followed != .done { outcome = followed }
        }
        return RunReport(
            batch: batch, sent: sent, tracked: tracked, status: status, sendOutcome: sendOutcome,
            outcome: outcome)
    }

    /// Follows the batch's submitted tasks to their end, where the batch runs, and saves
    /// their audio where the batch saves it.
    public func track(
        _ given: BatchSettings, once: Bool = false, key: @escaping KeySource, progress: ProgressDisplay? = nil
    ) async throws -> RunReport {
        let batchID = try await ledger.batchID(named: batch)
        let remembered = try await settle(given, batchID: batchID)
        let settings = remembered.followSettings(once: once)
        let tracked = try await ledger.withFollowing(batch: batch) {
            try await follow(remembered, settings: settings, batchID: batchID, key: key, progress: progress)
        }
        return RunReport(
            batch: batch, sent: nil, tracked: tracked, status: try await batchStatus(), sendOutcome: nil,
            outcome: .afterTracking(tracked, stopReason: stop.reason))
    }

    private func follow(
        _ remembered: BatchSettings, settings: FollowSettings, batchID: Int64, key: @escaping KeySource,
        progress: ProgressDisplay?
    ) async throws -> TrackCounters {
        try await withService(remembered, batchID: batchID, key: key) { baseURL, key in
            try await MusicGPTClient.withClient(baseURL: baseURL, key: key) { client in
                try await withDownloader(settings.download) { downloader in
                    let health = ServiceHealth(
                        limit: remembered.sendSettings.dispatch.outageLimit, clock: ContinuousClock(), logger: logger)
                    let tracker = Tracker(
                        ledger: ledger, checker: client, settings: adopting(settings.tracking),
                        clock: ContinuousClock(), stop: stop, logger: logger, health: health,
                        sharedPace: try await ledger.sharedPace(forKey: key.fingerprint, .looks))
                    let downloads = DownloadTally()
                    let snapshot: @Sendable () -> RunProgress = {
                        let (saved, _, failed) = downloads.counts
                        return RunProgress(
                            following: tracker.progress, saved: saved, saveFailed: failed,
                            outageSince: health.downSince,
                            likelyEnd: TimeLeft.likelyEnd(sending: nil, generating: tracker.generation, now: Date()))
                    }
                    return try await Self.showing(progress, snapshot: snapshot) {
                        [ledger, logger] in
                        try await Results.follow(
                            batchID: batchID, ledger: ledger, tracker: tracker,
                            downloader: downloader, downloads: downloads, stop: stop, logger: logger)
                    }
                }
            }
        }
    }

    /// Runs `body` with the service the batch runs at: the API with the user's key, or the
    /// built-in sandbox, started with the batch's earlier tasks.
    private func withService<T: Sendable>(
        _ settings: BatchSettings, batchID: Int64, key: KeySource,
        _ body: (_ baseURL: String, _ key: APIKey) async throws -> T
    ) async throws -> T {
        switch settings.service ?? .api(baseURL: fallbackBaseURL) {
        case let .api(baseURL):
            return try await body(baseURL, try key())
        case let .sandbox(port):
            guard let sandbox else { throw BatchRunError.noSandbox(batch: batch) }
            // Beside a ledger file; in the folder run from, for a database.
            let stateFile = ledger.isShared ? "soundbatch.sandbox.json" : ledger.location + ".sandbox.json"
            return try await sandbox.withSandbox(port: port, stateFile: stateFile) {
                baseURL, boundPort, key in
                if boundPort != port {  // the first start, on a free port: keep it for next time
                    var bound = settings
                    bound.service = .sandbox(port: boundPort)
                    try await ledger.recordSettings(bound, ofBatch: batchID)
                }
                logger.info("sandbox listening at \(baseURL)")
                return try await body(baseURL, key)
            }
        }
    }

    /// Sends the jobs, with the tracker taking each accepted one as it comes.
    private func dispatch(
        batchID: Int64, settings: SendSettings, client: MusicGPTClient, key: APIKey, downloader: Downloader?,
        progress: ProgressDisplay?
    ) async throws -> (DispatchResult, TrackCounters?) {
        let (accepted, arrival) = AsyncStream.makeStream(of: TrackedJob.self)
        let health = ServiceHealth(limit: settings.dispatch.outageLimit, clock: ContinuousClock(), logger: logger)
        var dispatch = settings.dispatch
        dispatch.sharedQueue = ledger.isShared
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
                return try await Results.follow(
                    batchID: batchID, ledger: ledger, tracker: tracker, downloader: downloader,
                    incoming: accepted, downloads: downloads, stop: stop, logger: logger)
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

    /// Runs `work` with `progress` shown beside it until it ends.
    private static func showing<T: Sendable>(
        _ progress: ProgressDisplay?, snapshot: @escaping @Sendable () -> RunProgress,
        _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        guard let progress else { return try await work() }
        // Left unawaited, it is cancelled (the line cleared) and waited for when `work` ends.
        async let _: Void = progress(snapshot)
        return try await work()
    }

    private func withDownloader<T>(
        _ settings: DownloadSettings?, _ body: (Downloader?) async throws -> T
    )
        async throws -> T
    {
        guard let settings else { return try await body(nil) }
        return try await Downloader.withDownloader(ledger: ledger, settings: settings) { try await body($0) }
    }

    /// On a shared ledger, a runner also takes on the tasks of runners that died.
    private func adopting(_ settings: TrackSettings) -> TrackSettings {
        var settings = settings
        if ledger.isShared { settings.adoptEvery = .seconds(20) }
        return settings
    }

    private func batchStatus() async throws -> BatchStatus {
        try await ledger.status(batch: batch).first ?? BatchStatus(name: batch)
    }
}
