import Foundation
import PostgresNIO
import SoundbatchCore

extension PostgresLedger {
    public func sharedPace(forKey fingerprint: String, _ requests: PacedRequests) async throws -> (any SharedPace)? {
        let budget = "\(fingerprint):\(requests.rawValue)"
        try await run(
            """
            INSERT INTO key_budgets (fingerprint, next_slot) VALUES (\(budget), clock_timestamp())
            ON CONFLICT (fingerprint) DO NOTHING
            """)
        return KeyBudget(ledger: self, budget: budget)
    }
}

/// One key's pace for one kind of request, in its row of `key_budgets`: each reservation
/// advances the row's next free slot in one statement, so that reservations from any
/// number of runners are spaced as one runner's would be. Times are the server's, so the
/// runners' clocks need not agree: each is told only how long to wait.
struct KeyBudget: SharedPace {
    let ledger: PostgresLedger
    let budget: String

    func reserve(interval: Duration) async throws -> Duration {
        let seconds = interval.seconds
        let wait: Double = try await ledger.value(
            """
            UPDATE key_budgets SET next_slot = GREATEST(next_slot, clock_timestamp()) + make_interval(secs => \(seconds))
            WHERE fingerprint = \(budget)
            RETURNING EXTRACT(EPOCH FROM next_slot - clock_timestamp())::float8 - \(seconds)
            """)
        return .seconds(max(wait, 0))
    }

    func pause(for duration: Duration) async throws {
        try await ledger.run(
            """
            UPDATE key_budgets SET next_slot = GREATEST(next_slot, clock_timestamp() + make_interval(secs => \(duration.seconds)))
            WHERE fingerprint = \(budget)
            """)
    }
}
