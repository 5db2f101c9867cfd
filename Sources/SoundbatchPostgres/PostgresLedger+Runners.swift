import Foundation
import PostgresNIO
import SoundbatchCore

// What several runners sharing one ledger need, and SQLite does not: leases, and claims.
extension PostgresLedger {
    /// Whether no live runner holds the job: none does, or the one that did has a lease
    /// that ran out (it died, or lost the server for longer than its lease).
    private static func heldByNoLiveRunner(_ job: String) -> SQL {
        "NOT EXISTS (SELECT 1 FROM runners r WHERE r.id = \(raw: job).runner_id AND r.lease_until > clock_timestamp())"
    }

    public func held(_ job: String, by holder: JobHolder) -> SQL {
        let me = runnerID ?? -1
        return switch holder {
        case .meOrNobody: "(\(raw: job).runner_id = \(me) OR \(Self.heldByNoLiveRunner(job)))"
        case .nobodyLive: "(\(raw: job).runner_id IS DISTINCT FROM \(me) AND \(Self.heldByNoLiveRunner(job)))"
        }
    }

    /// Claims the jobs held as `claim.holder` says for this runner, skipping those another
    /// runner is claiming this moment: no job goes to two runners. A claim of pending jobs
    /// stays small, so that runners share the end of a batch. A process that is no runner
    /// (a report, a receiver) reads them.
    public func claim(_ claim: JobClaim) async throws -> [LedgerRow] {
        guard let me = runnerID else {
            let limit: SQL = claim.limit.map { " LIMIT \($0)" } ?? ""
            return try await rows("SELECT \(claim.columns) FROM jobs j WHERE \(claim.filter) ORDER BY j.id\(limit)")
        }
        let size = claim.holder == .meOrNobody ? claim.limit.map { min($0, Self.claimSize) } : claim.limit
        let limit: SQL = size.map { " LIMIT \($0)" } ?? ""
        return try await rows(
            """
            WITH claimed AS (
                SELECT j.id FROM jobs j WHERE \(claim.filter) AND \(held("j", by: claim.holder))
                ORDER BY j.id\(limit) FOR UPDATE SKIP LOCKED),
            taken AS (UPDATE jobs SET runner_id = \(me) FROM claimed WHERE jobs.id = claimed.id RETURNING jobs.id)
            SELECT \(claim.columns) FROM jobs j JOIN taken ON taken.id = j.id ORDER BY j.id
            """)
    }

    /// Jobs a runner claims to send at a time. Few: at a batch's end, the jobs one runner
    /// holds wait for it while the others are done; and a claim is one statement, cheap beside
    /// the requests it feeds (`scripts/bench-team.sh`: 1.3 to 1.8 ms of server CPU a job).
    static let claimSize = 4

    /// Runs `body` as one of the batch's runners: registered with a lease, renewed every
    /// third of it while `body` runs; released when it returns, its claims with it.
    public func withSending<T: Sendable>(batch: String, _ body: (Int64) async throws -> T) async throws -> T {
        let batchID = try await batchID(named: batch)
        let id: Int64 = try await value(
            """
            INSERT INTO runners (batch_id, host, pid, started_at, lease_until)
            VALUES (\(batchID), \(ProcessInfo.processInfo.hostName), \(Int(getpid())), \(Timestamp.string(Date())),
                    clock_timestamp() + make_interval(secs => \(lease.seconds)))
            RETURNING id
            """)
        runner.withLock { $0 = id }
        defer { runner.withLock { $0 = nil } }
        let result: T
        do {
            result = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.keepLease(id) }
                defer { group.cancelAll() }
                return try await body(batchID)
            }
        } catch {
            try? await release(id)
            throw error
        }
        try await release(id)
        return result
    }

    /// A runner that only follows tasks holds a lease as a sender does, for its claims.
    public func withFollowing<T: Sendable>(batch: String, _ body: (Int64) async throws -> T) async throws -> T {
        if runnerID != nil { return try await body(try await batchID(named: batch)) }
        return try await withSending(batch: batch, body)
    }

    /// Renews the lease every third of it, and holds the jobs of runners that died as
    /// in doubt once their leases run out. Ends when cancelled.
    private func keepLease(_ id: Int64) async throws {
        while true {
            try await Task.sleep(for: lease / 3)
            do {
                try await client.query(
                    """
                    UPDATE runners SET lease_until = clock_timestamp() + make_interval(secs => \(lease.seconds))
                    WHERE id = \(id)
                    """, logger: logger)
                // Runners long gone: their claims are free already (see `held`).
                try await client.query(
                    "DELETE FROM runners WHERE lease_until < clock_timestamp() - interval '1 hour'", logger: logger)
                let held = try await holdInterruptedSubmissions(now: Date())
                if held > 0 {
                    logger.warning(
                        "\(held) jobs of a runner that stopped answering were being sent; they are now in doubt")
                }
            } catch is CancellationError {
                return
            } catch {
                // The server is away: the calls that matter wait for it; this one tries next time.
                logger.debug("could not renew this runner's lease: \(error)")
            }
        }
    }

    /// Lets go of the runner's claims: jobs it still has in flight (their answers never
    /// recorded) are held in doubt, the rest are free for others.
    private func release(_ id: Int64) async throws {
        _ = try await holdInFlight("j.runner_id = \(id)", now: Date())
        try await transaction { db in
            try await db.run("UPDATE jobs SET runner_id = NULL WHERE runner_id = \(id)")
            try await db.run("DELETE FROM runners WHERE id = \(id)")
        }
    }
}
