import Foundation
import PostgresNIO
import SoundbatchCore

extension PostgresLedger {
    public func reviewRows(batchID: Int64, _ query: ReviewQuery) async throws -> (rows: [ReviewRow], matching: Int) {
        var binds = PostgresBindings()
        func parameter(_ value: String) -> String {
            binds.append(value)
            return "$\(binds.count)::text"
        }
        let filter = LedgerSQL.reviewFilter(
            query, pattern: query.pattern.map(parameter), state: query.state.map { parameter($0.rawValue) },
            lower: "lower")
        let matching = try await report(
            PostgresQuery(unsafeSQL: LedgerSQL.reviewCount(batchID: batchID, filter: filter), binds: binds)
        )[0].decode(Int.self)
        let rows = try await report(
            PostgresQuery(
                unsafeSQL: LedgerSQL.reviewRows(batchID: batchID, filter: filter, limit: query.limit, offset: query.offset),
                binds: binds)
        ).map { row in row.map { LedgerValue($0) } }
        let ids = rows.compactMap { row -> Int64? in if case let .integer(id) = row[0] { id } else { nil } }
        let takes = Dictionary(
            grouping: try await report(PostgresQuery(unsafeSQL: LedgerSQL.reviewTakes(jobIDs: ids)))
                .map { row in row.map { LedgerValue($0) } },
            by: { row -> Int64 in if case let .integer(id) = row[0] { id } else { 0 } })
        return (
            rows.map { row in
                let id: Int64 = if case let .integer(id) = row[0] { id } else { 0 }
                return ReviewRow(ledgerRow: row, earlierTakes: (takes[id] ?? []).map { Array($0.dropFirst()) })
            }, matching
        )
    }

    /// Take `take` of a job: where it is (0: the job's own, 1: in takes), its state, file, peaks and length.
    private func findTake(jobID: Int64, take: Int, on connection: PostgresConnection? = nil) async throws
        -> (kind: Int, state: String, path: String?, peaks: String?, seconds: Double?)?
    {
        var binds = PostgresBindings()
        binds.append(jobID)
        binds.append(take)
        let query = PostgresQuery(unsafeSQL: LedgerSQL.findTake(job: "$1", take: "$2"), binds: binds)
        let rows =
            if let connection { try await connection.query(query, logger: logger).collect() } else {
                try await self.rows(query)
            }
        return try rows.first?.decode((Int, String, String?, String?, Double?).self)
    }

    public func setVerdict(_ verdict: Verdict?, jobID: Int64, take: Int) async throws -> VerdictChange {
        try await transaction { connection in
            guard let found = try await self.findTake(jobID: jobID, take: take, on: connection) else { return .noSuchTake }
            let change = Verdict.change(verdict, on: try JobState(ledger: found.state))
            guard change == .recorded else { return change }
            var binds = PostgresBindings()
            binds.append(jobID)
            binds.append(take)
            binds.append(verdict?.rawValue)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: LedgerSQL.updateTake(kind: found.kind, set: "verdict = $3::text", job: "$1", take: "$2"),
                    binds: binds), logger: self.logger)
            return .recorded
        }
    }

    public func sound(jobID: Int64, take: Int) async throws -> (path: String, summary: SoundSummary?)? {
        guard let found = try await findTake(jobID: jobID, take: take), let path = found.path else { return nil }
        let summary = found.peaks.flatMap { peaks in
            found.seconds.map { SoundSummary(seconds: $0, peaks: SoundSummary.peaks(fromText: peaks)) }
        }
        return (path, summary)
    }

    public func recordSound(_ summary: SoundSummary, jobID: Int64, take: Int) async throws {
        guard let found = try await findTake(jobID: jobID, take: take) else { return }
        var binds = PostgresBindings()
        binds.append(jobID)
        binds.append(take)
        binds.append(summary.peaksText)
        binds.append(summary.seconds)
        try await rows(
            PostgresQuery(
                unsafeSQL: LedgerSQL.updateTake(
                    kind: found.kind, set: "peaks = $3::text, audio_seconds = $4::float8", job: "$1", take: "$2"),
                binds: binds))
    }

    public func jobIDs(batchID: Int64, row: String) async throws -> [Int64] {
        var binds = PostgresBindings()
        binds.append(row)
        return try await rows(PostgresQuery(unsafeSQL: LedgerSQL.jobsNamed(batchID: batchID, row: "$1::text"), binds: binds))
            .map { try $0.decode(Int64.self) }
    }

    public func verdictCounts(batch: String?) async throws -> [String: VerdictCounts] {
        var binds = PostgresBindings()
        binds.append(batch)
        var counts: [String: VerdictCounts] = [:]
        for row in try await report(
            PostgresQuery(unsafeSQL: LedgerSQL.verdictCounts(batchFilter: "($1::text IS NULL OR b.name = $1)"), binds: binds))
        {
            let (name, verdict, sounds) = try row.decode((String, String?, Int).self)
            counts[name, default: VerdictCounts()].count(verdict, sounds)
        }
        return counts
    }
}
