import Foundation
import Logging

/// A retry: new takes of finished jobs, sent as the batch is run.
extension BatchRun {
    /// Sends a new take of each job in `plan` (see `planRetry`), as `send` would: the
    /// current take of each is kept in the ledger, its file where it is (the new one is
    /// saved under its own take's name, `door.take4.wav`).
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
        let moved = try await ledger.startNewTakes(jobIDs: plan.jobs.map(\.id), prompts: plan.prompts, now: Date())
        logger.notice("\(moved) job\(moved == 1 ? " is" : "s are") pending again, for a new take")
        return try await sendHoldingClaim(given, batchID: batchID, resendInDoubt: false, key: key, progress: progress)
    }

    /// Which finished jobs a retry sends again, what they may cost, and which will likely
    /// fail again. By default: generation failures, tasks the service lost, and jobs failed
    /// for a reason a retry can fix (not a 400 or 422, which only `states` or `rows` take);
    /// with `rejected`, the sounds a person rejected, with `flagged`, those whose latest take a
    /// check found one of these findings in (any, when empty), and what `states` and `rows`
    /// name; `jobIDs` names jobs as the ledger knows them (a review page does); those not
    /// finished are left out.
    public func planRetry(
        states: Set<JobState>?, rows: [String], rejected: Bool = false, flagged: Set<Finding>? = nil,
        jobIDs: [Int64] = []
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
        if let flagged {
            for job in all where job.isFlagged(flagged) { chosen[job.id] = job }
        }
        if let states {
            for job in all where states.contains(job.state) { chosen[job.id] = job }
        } else if rows.isEmpty && jobIDs.isEmpty && !rejected && flagged == nil {
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

/// `--reroll-flagged N`: the takes a check found wrong, sent again by the run itself.
extension BatchRun {
    /// After a run that saved and checked its sounds, each job whose latest take a check
    /// found wrong is sent again, as long as fewer than N of its earlier takes were found
    /// wrong, and only as many as `--max-credits` leaves room for (a job never waits half
    /// re-rolled); round after round, until none is left or the run is stopped.
    func rerollingFlagged(
        after first: RunReport, batchID: Int64, key: @escaping KeySource, progress: ProgressDisplay?
    ) async throws -> RunReport {
        let settings = try await ledger.settings(ofBatch: batchID) ?? BatchSettings()
        guard let most = settings.rerollFlagged, most > 0 else { return first }
        guard settings.wait == true, settings.followSettings(once: false).download?.checks != nil else {
            logger.warning("--reroll-flagged re-rolls only sounds saved and checked: run with --wait --download DIR")
            return first
        }
        var report = first
        while [.done, .someFailed].contains(report.outcome), !stop.isStopped {
            var plan = try await planRetry(states: [], rows: [], flagged: [])
            plan.jobs = try await withinBudget(plan.jobs.filter { $0.flaggedEarlierTakes < most }, settings, batchID)
            guard !plan.jobs.isEmpty else { break }
            logger.notice(
                "re-rolling \(plan.jobs.count) sound\(plan.jobs.count == 1 ? "" : "s") a check found wrong (at most \(most) times each)"
            )
            let round = try await retryHoldingClaim(
                plan, batchID: batchID, given: BatchSettings(), key: key, progress: progress)
            report.tracked = round.tracked
            report.status = round.status
            report.outcome = round.outcome
            report.rerolled += plan.jobs.count
        }
        return report
    }

    /// The first of `jobs` whose estimates, each its earlier one or the batch's largest, fit
    /// under `--max-credits` with what the batch may have cost already.
    private func withinBudget(
        _ jobs: [RetryCandidate], _ settings: BatchSettings, _ batchID: Int64
    ) async throws
        -> [RetryCandidate]
    {
        guard let limit = settings.maxCredits else { return jobs }
        let state = try await ledger.creditState(batchID: batchID)
        guard let largest = state.largest else { return [] }
        var room = limit - state.estimated - Double(state.inDoubt) * largest
        return Array(
            jobs.prefix { job in
                room -= job.creditEstimate ?? largest
                return room >= 0
            })
    }
}
