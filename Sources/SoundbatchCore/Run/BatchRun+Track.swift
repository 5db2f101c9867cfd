import Foundation
import Logging

/// Following a batch's tasks to their end, alone (`track`).
extension BatchRun {
    /// Follows the batch's submitted tasks to their end, where the batch runs, and saves
    /// their audio where the batch saves it.
    public func track(
        _ given: BatchSettings, once: Bool = false, key: @escaping KeySource, progress: ProgressDisplay? = nil
    ) async throws -> RunReport {
        let tracked = try await ledger.withFollowing(batch: batch) { batchID in
            try await ledger.requireKnownStates(batchID: batchID)
            let remembered = try await settle(given, batchID: batchID)
            return try await follow(
                remembered, settings: remembered.followSettings(once: once), batchID: batchID, key: key,
                progress: progress)
        }
        return RunReport(
            batch: batch, sent: nil, tracked: tracked, status: try await batchStatus(), sendOutcome: nil,
            outcome: .afterTracking(tracked, stopReason: stop.reason))
    }

    func follow(
        _ remembered: BatchSettings, settings: FollowSettings, batchID: Int64, key: @escaping KeySource,
        progress: ProgressDisplay?
    ) async throws -> TrackCounters {
        try await withService(remembered, batchID: batchID, key: key) { baseURL, key, ownCallbacks in
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
                        try await Self.following(ownCallbacks) { joining, handled in
                            try await Results.follow(
                                batchID: batchID, ledger: ledger, tracker: tracker, downloader: downloader,
                                joining: joining, callbacksHandled: handled, downloads: downloads, stop: stop,
                                logger: logger)
                        }
                    }
                }
            }
        }
    }
}
