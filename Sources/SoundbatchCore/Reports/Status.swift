import GRDB

/// What the ledger holds for one batch.
public struct BatchStatus: Sendable, Equatable, Encodable {
    public var name: String
    public var jobs: Int
    /// The count in every state, zeros included, so scripts can rely on each key.
    public var states: [String: Int]
    public var creditEstimateTotal: Double
    public var conversionCostTotal: Double

    public func count(_ state: JobState) -> Int { states[state.rawValue] ?? 0 }

    enum CodingKeys: String, CodingKey {
        case name, jobs, states
        case creditEstimateTotal = "credit_estimate_total"
        case conversionCostTotal = "conversion_cost_total"
    }
}

extension Ledger {
    /// Counts per state and credit totals, per batch, in name order; `batch` narrows it to one.
    public func status(batch: String? = nil) throws -> [BatchStatus] {
        try database.read { db in
            if let batch, try Int.fetchOne(db, sql: "SELECT 1 FROM batches WHERE name = ?", arguments: [batch]) == nil {
                throw LedgerError.noSuchBatch(batch, known: try String.fetchAll(db, sql: "SELECT name FROM batches ORDER BY name"))
            }
            let rows = try Row.fetchAll(db, sql: """
                SELECT b.name, j.state, COUNT(j.id) AS jobs,
                       TOTAL(j.credit_estimate) AS estimated, TOTAL(j.conversion_cost) AS charged
                FROM batches b LEFT JOIN jobs j ON j.batch_id = b.id
                WHERE ?1 IS NULL OR b.name = ?1
                GROUP BY b.id, j.state
                ORDER BY b.name
                """, arguments: [batch])
            var result: [BatchStatus] = []
            for row in rows {
                let name: String = row["name"]
                if result.last?.name != name {
                    let zeros = Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, 0) })
                    result.append(BatchStatus(name: name, jobs: 0, states: zeros, creditEstimateTotal: 0, conversionCostTotal: 0))
                }
                guard let state: String = row["state"] else { continue }  // a batch with no jobs
                let jobs: Int = row["jobs"]
                result[result.count - 1].jobs += jobs
                result[result.count - 1].states[state, default: 0] += jobs
                result[result.count - 1].creditEstimateTotal += row["estimated"]
                result[result.count - 1].conversionCostTotal += row["charged"]
            }
            return result
        }
    }
}
