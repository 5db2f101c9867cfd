import Foundation
import Logging

/// A retry: new takes of finished jobs, sent as the batch is run.
extension BatchRun {
    /// Sends a new take of each job in `plan` (see `planRetry`), as `send` would: the
    /// current take of each is kept in the ledger, and a completed job's file is moved
    /// aside (`door.take1.wav`), never overwritten.
    public func retry(
        _ plan: RetryPlan, given: BatchSettings, key: @escaping KeySource, progress: ProgressDisplay? = nil
    ) async throws -> RunReport {
        try await ledger.withSending(batch: batch) { batchID in
            try await retryHoldingClaim(plan, batchID: batchID, given: given, key: key, progress: progress)
        }
    }

    func retryHoldingClaim(
        _ plan: RetryPlan, batchID: Int64, given: BatchSettings, key: @escaping KeySource, progress: ProgressDisplay?
    ) async throws -> RunReport {
        var renamed: [Int64: String] = [:]
        for job in plan.jobs where job.state == .completed {
            guard let path = job.downloadPath, FileManager.default.fileExists(atPath: path),
                !Self.isTakeName(path)
            else { continue }
            let aside = Self.takeName(for: path, take: job.take)
            guard rename(path, aside) == 0 else {
                throw FileError(path: path, errno: errno)
            }
            renamed[job.id] = aside
        }
        let moved = try await ledger.startNewTakes(
            jobIDs: plan.jobs.map(\.id), renamedFiles: renamed, prompts: plan.prompts, now: Date())
        logger.notice("\(moved) job\(moved == 1 ? " is" : "s are") pending again, for a new take")
        return try await sendHoldingClaim(given, batchID: batchID, resendInDoubt: false, key: key, progress: progress)
    }

    /// A name that says its take already (`door.take3.wav`, a row's further variation):
    /// the next take is saved under its own, so the file stays where it is.
    static func isTakeName(_ path: String) -> Bool {
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        guard let dot = stem.range(of: ".take", options: .backwards) else { return false }
        let number = stem[dot.upperBound...]
        return !number.isEmpty && number.allSatisfy(\.isASCII) && number.allSatisfy(\.isNumber)
    }

    /// `door.wav` of take 1 -> `door.take1.wav`; the first such name not taken when that one is.
    static func takeName(for path: String, take: Int) -> String {
        let url = URL(fileURLWithPath: path)
        let stem = url.deletingPathExtension().path
        let ext = url.pathExtension.isEmpty ? "" : "." + url.pathExtension
        var number = take
        if FileManager.default.fileExists(atPath: "\(stem).take\(number)\(ext)") { number = 1 }
        while FileManager.default.fileExists(atPath: "\(stem).take\(number)\(ext)") { number += 1 }
        return "\(stem).take\(number)\(ext)"
    }

    /// Which finished jobs a retry sends again, what they may cost, and which will likely
    /// fail again. By default: generation failures, tasks the service lost, and jobs failed
    /// for a reason a retry can fix (not a 400 or 422, which only `states` or `rows` take);
    /// with `rejected`, the sounds a person rejected (and what `states` and `rows` name);
    /// `jobIDs` names jobs as the ledger knows them (a review page does); those not finished
    /// are left out.
    public func planRetry(
        states: Set<JobState>?, rows: [String], rejected: Bool = false, jobIDs: [Int64] = []
    ) async throws -> RetryPlan {
        let batchID = try await ledger.batchID(named: batch)
        try await ledger.requireKnownStates(batchID: batchID)
        let all = try await ledger.retryCandidates(
            batchID: batchID, states: JobState.finished)
        var chosen: [Int64: RetryCandidate] = [:]
        var unknown: [String] = []
        for row in rows {
            let named = all.filter { $0.rowKey == row || String($0.line) == row }
            if named.isEmpty { unknown.append(row) }
            for job in named { chosen[job.id] = job }
        }
        for job in all where jobIDs.contains(job.id) { chosen[job.id] = job }
        if rejected {
            for job in all where job.state == .completed && job.verdict == .rejected { chosen[job.id] = job }
        }
        if let states {
            for job in all where states.contains(job.state) { chosen[job.id] = job }
        } else if rows.isEmpty && jobIDs.isEmpty && !rejected {
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
}
