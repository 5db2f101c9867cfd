import Foundation
import GRDB
import SoundbatchCore

extension SQLiteLedger {
    public func reviewRows(batchID: Int64, _ query: ReviewQuery) async throws -> (rows: [ReviewRow], matching: Int) {
        try await read { db in
            var arguments: [(any DatabaseValueConvertible)?] = []
            func parameter(_ value: String) -> String {
                arguments.append(value)
                return "?\(arguments.count)"
            }
            let filter = LedgerSQL.reviewFilter(
                query, pattern: query.pattern.map(parameter), state: query.state.map { parameter($0.rawValue) },
                lower: "swiftLowercaseString")
            let bound = StatementArguments(arguments)
            let matching = try Int.fetchOne(
                db, sql: LedgerSQL.reviewCount(batchID: batchID, filter: filter), arguments: bound) ?? 0
            let rows = try Row.fetchAll(
                db, sql: LedgerSQL.reviewRows(batchID: batchID, filter: filter, limit: query.limit, offset: query.offset),
                arguments: bound)
            let takes = Dictionary(
                grouping: try Row.fetchAll(db, sql: LedgerSQL.reviewTakes(jobIDs: rows.map { $0[0] })),
                by: { $0[0] as Int64 })
            return (
                rows.map { row in
                    ReviewRow(
                        ledgerRow: Self.values(row),
                        earlierTakes: (takes[row[0]] ?? []).map { Array(Self.values($0).dropFirst()) })
                }, matching
            )
        }
    }

    public func setVerdict(_ verdict: Verdict?, jobID: Int64, take: Int) async throws -> VerdictChange {
        try await write { db in
            guard let found = try Row.fetchOne(db, sql: LedgerSQL.findTake(job: "?1", take: "?2"), arguments: [jobID, take])
            else { return .noSuchTake }
            let change = Verdict.change(verdict, on: try JobState(ledger: found[1]))
            guard change == .recorded else { return change }
            try db.execute(
                sql: LedgerSQL.updateTake(kind: found[0], set: "verdict = ?3", job: "?1", take: "?2"),
                arguments: [jobID, take, verdict?.rawValue])
            return .recorded
        }
    }

    public func sound(jobID: Int64, take: Int) async throws -> (path: String, summary: SoundSummary?)? {
        try await read { db in
            guard let found = try Row.fetchOne(db, sql: LedgerSQL.findTake(job: "?1", take: "?2"), arguments: [jobID, take]),
                let path: String = found[2]
            else { return nil }
            let peaks: String? = found[3]
            let seconds: Double? = found[4]
            return (path, peaks.flatMap { peaks in seconds.map { SoundSummary(seconds: $0, peaks: SoundSummary.peaks(fromText: peaks)) } })
        }
    }

    public func recordSound(_ summary: SoundSummary, jobID: Int64, take: Int) async throws {
        try await write { db in
            guard let found = try Row.fetchOne(db, sql: LedgerSQL.findTake(job: "?1", take: "?2"), arguments: [jobID, take])
            else { return }
            try db.execute(
                sql: LedgerSQL.updateTake(kind: found[0], set: "peaks = ?3, audio_seconds = ?4", job: "?1", take: "?2"),
                arguments: [jobID, take, summary.peaksText, summary.seconds])
        }
    }

    public func jobIDs(batchID: Int64, row: String) async throws -> [Int64] {
        try await read { try Int64.fetchAll($0, sql: LedgerSQL.jobsNamed(batchID: batchID, row: "?1"), arguments: [row]) }
    }

    public func verdictCounts(batch: String?) async throws -> [String: VerdictCounts] {
        try await read { db in
            var counts: [String: VerdictCounts] = [:]
            for row in try Row.fetchAll(
                db, sql: LedgerSQL.verdictCounts(batchFilter: "(?1 IS NULL OR b.name = ?1)"), arguments: [batch])
            {
                counts[row[0], default: VerdictCounts()].count(row[1], row[2])
            }
            return counts
        }
    }

    /// A row's values as the core reads them.
    static func values(_ row: Row) -> [LedgerValue] { (0..<row.count).map { LedgerValue(row[$0]) } }
}
