import Foundation
import Logging
import Synchronization

/// Tracking and downloading together: the tracker's completed jobs go to a few
/// download workers, and jobs completed earlier whose audio is missing go first.
/// On a stop, downloads under way are given up (nothing is written; the ledger keeps the
/// audio's address for a later `track --download`) and no new one starts.
public enum Results {
    /// A job whose audio is to be saved: as the ledger listed it already, or by the id of a
    /// job completed just now (read when its turn comes).
    enum ToSave: Sendable {
        case listed(AudioJob)
        case completed(Int64)

        var id: Int64 {
            switch self {
            case let .listed(job): job.id
            case let .completed(id): id
            }
        }
    }

    public static func follow<C: Clock>(
        batchID: Int64, ledger: any DownloadLedger, tracker: Tracker<C>, downloader: Downloader?,
        incoming: AsyncStream<TrackedJob>? = nil, joining: AsyncStream<TrackedJob>? = nil,
        callbacksMayCome: (@Sendable () async throws -> Date?)? = nil,
        callbacksHandled: @Sendable () async -> Void = {}, downloads: DownloadTally = DownloadTally(),
        stop: StopSignal, logger: Logger
    ) async throws -> TrackCounters where C.Duration == Duration {
        let (queue, toSave) = AsyncStream.makeStream(of: ToSave.self)
        /// Each job once: the tracker and the ledger's lists may both name one.
        let queued = Mutex(Set<Int64>())
        let enqueue = { @Sendable (item: ToSave) in
            if queued.withLock({ $0.insert(item.id).inserted }) { toSave.yield(item) }
        }
        var counters = try await withThrowingTaskGroup(of: Void.self) { group -> TrackCounters in
            if let downloader {
                for _ in 0..<max(downloader.settings.concurrency, 1) {
                    group.addTask {
                        for await item in queue where !stop.isStopped {
                            let job: AudioJob? =
                                switch item {
                                case let .listed(job): job
                                case let .completed(id): try await ledger.audioJob(id: id)
                                }
                            guard let job else { continue }
                            do {
                                guard let fetched = try await stop.unlessStopped({ try await downloader.fetch(job) })
                                else { continue }
                                switch fetched {
                                case let .downloaded(path, size):
                                    downloads.withLock { $0.done += 1 }
                                    logger.debug("\(job.row): saved \(path) (\(size) bytes)")
                                case let .fromLedger(path, size):
                                    downloads.withLock { $0.done += 1 }
                                    logger.debug("\(job.row): saved \(path) (\(size) bytes) from the ledger")
                                case .alreadyThere:
                                    downloads.withLock { $0.skipped += 1 }
                                }
                            } catch let error as DownloadError {
                                downloads.withLock { $0.failed += 1 }
                                logger.warning(
                                    "\(job.row): \(error); `soundbatch track --download` will try again")
                            }
                        }
                    }
                }
                for job in try await ledger.audioJobs(batchID: batchID) { enqueue(.listed(job)) }
            }
            defer { toSave.finish() }
            let counters = try await tracker.run(
                batchID: batchID, incoming: incoming, joining: joining, callbacksMayCome: callbacksMayCome
            ) { id in
                if downloader != nil { enqueue(.completed(id)) }
            }
            // Jobs a callback completed while the tracker ran, and that it never heard of: once
            // the callbacks under way are handled, and no more are let in.
            await callbacksHandled()
            if downloader != nil, !stop.isStopped {
                for job in try await ledger.audioJobs(batchID: batchID) where job.downloadedPath == nil {
                    enqueue(.listed(job))
                }
            }
            return counters
        }
        let (done, skipped, failed) = downloads.counts
        counters.downloaded = done
        counters.downloadsSkipped = skipped
        counters.downloadsFailed = failed
        return counters
    }
}

/// Download counts shared by the download workers, readable while they work.
public final class DownloadTally: Sendable {
    private let mutex = Mutex((done: 0, skipped: 0, failed: 0))

    public init() {}

    func withLock(_ body: (inout (done: Int, skipped: Int, failed: Int)) -> Void) { mutex.withLock { body(&$0) } }

    /// Saved, already there, failed.
    public var counts: (saved: Int, alreadyThere: Int, failed: Int) {
        mutex.withLock { ($0.done, $0.skipped, $0.failed) }
    }
}
