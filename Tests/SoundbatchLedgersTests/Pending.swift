import SoundbatchCore

/// Every pending job of the batch, in id order, as a sender claims them: a shared ledger
/// hands out a few at a time. Call within `withSending`.
func allPendingJobs(_ ledger: any LedgerStore, batchID: Int64) async throws -> [PendingJob] {
    var jobs: [PendingJob] = []
    while case let more = try await ledger.pendingJobs(batchID: batchID, afterID: jobs.last?.id ?? 0, limit: 8),
        !more.isEmpty
    {
        jobs += more
    }
    return jobs
}
