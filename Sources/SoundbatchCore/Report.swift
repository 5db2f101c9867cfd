import Foundation
import GRDB

/// What a report covers.
public struct ReportQuery: Sendable {
    public enum Grouping: String, Sendable, CaseIterable { case batch, day, state }

    public var batch: String?
    public var grouping = Grouping.batch
    /// Submission time bounds, as ISO 8601 text (UTC): since is inclusive, until exclusive.
    public var since: String?
    public var until: String?

    public init(batch: String? = nil, grouping: Grouping = .batch, since: String? = nil, until: String? = nil) {
        self.batch = batch
        self.grouping = grouping
        self.since = since
        self.until = until
    }

    /// The WHERE clause shared by every report query, with its arguments.
    var filter: (sql: String, arguments: StatementArguments) {
        ("""
        (?1 IS NULL OR b.name = ?1) AND (?2 IS NULL OR j.submitted_at >= ?2) AND (?3 IS NULL OR j.submitted_at < ?3)
        """, [batch, since, until])
    }
}

/// The spend of one group of jobs (a batch, a day or a state), or of all of them.
public struct SpendTotals: Sendable, Equatable, Encodable {
    public var group: String
    public var jobs: Int
    public var states: [String: Int]
    /// Sum of credit_estimate over jobs the service accepted.
    public var creditsEstimated: Double
    /// Sum of conversion_cost over finished jobs.
    public var creditsCharged: Double
    /// Jobs with a charge, and what was estimated for those same jobs.
    public var chargedJobs: Int
    public var estimatedForCharged: Double
    /// Seconds of audio requested by the charged jobs that asked for a length, and their charge.
    public var secondsForCharged: Double
    public var chargedWithLength: Double
    /// Jobs still running or ambiguous: no charge yet. What the running ones are estimated at.
    public var unchargedJobs: Int
    public var unchargedEstimate: Double
    public var firstSubmitted: String?
    public var lastSubmitted: String?

    /// Charged minus estimated, over the jobs charged: how far the estimates were off.
    public var difference: Double { creditsCharged - estimatedForCharged }
    public var averagePerJob: Double? { chargedJobs > 0 ? creditsCharged / Double(chargedJobs) : nil }
    public var averagePerSecond: Double? { secondsForCharged > 0 ? chargedWithLength / secondsForCharged : nil }

    enum CodingKeys: String, CodingKey {
        case group, jobs, states, difference
        case creditsEstimated = "credits_estimated"
        case creditsCharged = "credits_charged"
        case chargedJobs = "charged_jobs"
        case unchargedJobs = "uncharged_jobs"
        case unchargedEstimate = "uncharged_estimate"
        case averagePerJob = "average_per_job"
        case averagePerSecond = "average_per_second_of_audio"
        case firstSubmitted = "first_submitted"
        case lastSubmitted = "last_submitted"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(group, forKey: .group)
        try c.encode(jobs, forKey: .jobs)
        try c.encode(states, forKey: .states)
        try c.encode(creditsEstimated.cents, forKey: .creditsEstimated)
        try c.encode(creditsCharged.cents, forKey: .creditsCharged)
        try c.encode(difference.cents, forKey: .difference)
        try c.encode(chargedJobs, forKey: .chargedJobs)
        try c.encode(unchargedJobs, forKey: .unchargedJobs)
        try c.encode(unchargedEstimate.cents, forKey: .unchargedEstimate)
        try c.encode(averagePerJob.map(\.cents), forKey: .averagePerJob)
        try c.encode(averagePerSecond.map { ($0 * 10_000).rounded() / 10_000 }, forKey: .averagePerSecond)
        try c.encode(firstSubmitted, forKey: .firstSubmitted)
        try c.encode(lastSubmitted, forKey: .lastSubmitted)
    }

    static func empty(_ group: String) -> SpendTotals {
        SpendTotals(group: group, jobs: 0, states: Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, 0) }),
                    creditsEstimated: 0, creditsCharged: 0, chargedJobs: 0, estimatedForCharged: 0, secondsForCharged: 0,
                    chargedWithLength: 0, unchargedJobs: 0, unchargedEstimate: 0, firstSubmitted: nil, lastSubmitted: nil)
    }

    /// Adds another group's figures into this one (for the grand total).
    mutating func add(_ other: SpendTotals) {
        jobs += other.jobs
        for (state, count) in other.states { states[state, default: 0] += count }
        creditsEstimated += other.creditsEstimated
        creditsCharged += other.creditsCharged
        chargedJobs += other.chargedJobs
        estimatedForCharged += other.estimatedForCharged
        secondsForCharged += other.secondsForCharged
        chargedWithLength += other.chargedWithLength
        unchargedJobs += other.unchargedJobs
        unchargedEstimate += other.unchargedEstimate
        firstSubmitted = [firstSubmitted, other.firstSubmitted].compactMap { $0 }.min()
        lastSubmitted = [lastSubmitted, other.lastSubmitted].compactMap { $0 }.max()
    }
}

/// A report's totals: one row per group, and the grand total.
public struct SpendReport: Sendable, Equatable, Encodable {
    public var grouping: String
    public var groups: [SpendTotals]
    public var total: SpendTotals
}

/// A point of the cumulative credit chart.
public struct CreditPoint: Sendable, Equatable {
    public var time: String
    public var estimated: Double
    public var charged: Double
}

extension Double {
    /// Rounded to hundredths, the precision credits are shown in.
    var cents: Double { (self * 100).rounded() / 100 }
}

extension Ledger {
    /// Totals per group and overall, read in one pass over the jobs.
    public func spendReport(_ query: ReportQuery) async throws -> SpendReport {
        try await database.read { db in
            if let batch = query.batch,
               try Int.fetchOne(db, sql: "SELECT 1 FROM batches WHERE name = ?", arguments: [batch]) == nil {
                throw LedgerError.noSuchBatch(batch, known: try String.fetchAll(db, sql: "SELECT name FROM batches ORDER BY name"))
            }
            let group = switch query.grouping {
            case .batch: "b.name"
            case .day: "COALESCE(substr(j.submitted_at, 1, 10), 'not submitted')"
            case .state: "j.state"
            }
            let states = JobState.allCases.map { "SUM(j.state = '\($0.rawValue)') AS \"\($0.rawValue)\"" }.joined(separator: ", ")
            let (filter, arguments) = query.filter
            let rows = try Row.fetchAll(db, sql: """
                SELECT \(group) AS grp, COUNT(*) AS jobs, \(states),
                       TOTAL(j.credit_estimate) AS estimated,
                       TOTAL(j.conversion_cost) AS charged,
                       COUNT(j.conversion_cost) AS charged_jobs,
                       TOTAL(CASE WHEN j.conversion_cost IS NOT NULL THEN j.credit_estimate END) AS estimated_for_charged,
                       TOTAL(CASE WHEN j.conversion_cost IS NOT NULL THEN j.audio_length END) AS seconds_for_charged,
                       TOTAL(CASE WHEN j.audio_length IS NOT NULL THEN j.conversion_cost END) AS charged_with_length,
                       SUM(j.state IN ('submitted', 'submitting', 'ambiguous')) AS uncharged_jobs,
                       TOTAL(CASE WHEN j.state IN ('submitted', 'submitting') THEN j.credit_estimate END) AS uncharged_estimate,
                       MIN(j.submitted_at) AS first_submitted, MAX(j.submitted_at) AS last_submitted
                FROM jobs j JOIN batches b ON b.id = j.batch_id
                WHERE \(filter)
                GROUP BY grp ORDER BY grp
                """, arguments: arguments)
            let groups = rows.map { row in
                SpendTotals(
                    group: row["grp"], jobs: row["jobs"],
                    states: Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, row[$0.rawValue] as Int? ?? 0) }),
                    creditsEstimated: row["estimated"], creditsCharged: row["charged"], chargedJobs: row["charged_jobs"],
                    estimatedForCharged: row["estimated_for_charged"], secondsForCharged: row["seconds_for_charged"],
                    chargedWithLength: row["charged_with_length"],
                    unchargedJobs: row["uncharged_jobs"], unchargedEstimate: row["uncharged_estimate"],
                    firstSubmitted: row["first_submitted"], lastSubmitted: row["last_submitted"])
            }
            var total = SpendTotals.empty("total")
            for group in groups { total.add(group) }
            return SpendReport(grouping: query.grouping.rawValue, groups: groups, total: total)
        }
    }

    /// Cumulative credits estimated (by submission time) and charged (by completion time),
    /// in at most about `points` steps.
    public func creditTimeline(_ query: ReportQuery, points: Int = 200) async throws -> [CreditPoint] {
        try await database.read { db in
            let (filter, arguments) = query.filter
            // Minutes, hours or days: the finest bucket that keeps the chart small.
            var events: [(String, Double, Double)] = []
            for width in [16, 13, 10] {
                events = try Row.fetchAll(db, sql: """
                    SELECT t, TOTAL(e) AS e, TOTAL(c) AS c FROM (
                        SELECT substr(j.submitted_at, 1, \(width)) AS t, j.credit_estimate AS e, NULL AS c
                        FROM jobs j JOIN batches b ON b.id = j.batch_id WHERE \(filter) AND j.submitted_at IS NOT NULL
                        UNION ALL
                        SELECT substr(j.completed_at, 1, \(width)), NULL, j.conversion_cost
                        FROM jobs j JOIN batches b ON b.id = j.batch_id WHERE \(filter) AND j.completed_at IS NOT NULL
                    ) GROUP BY t ORDER BY t
                    """, arguments: arguments).map { ($0["t"], $0["e"], $0["c"]) }
                if events.count <= points { break }
            }
            var estimated = 0.0, charged = 0.0
            return events.map { time, e, c in
                estimated += e
                charged += c
                return CreditPoint(time: time, estimated: estimated, charged: charged)
            }
        }
    }

    /// The metadata keys (extra CSV columns) of the jobs a report covers, in order of first use.
    public func metadataKeys(_ query: ReportQuery) async throws -> [String] {
        try await database.read { db in
            let (filter, arguments) = query.filter
            return try String.fetchAll(db, sql: """
                SELECT m.key FROM jobs j JOIN batches b ON b.id = j.batch_id, json_each(j.metadata) m
                WHERE \(filter) AND j.metadata IS NOT NULL
                GROUP BY m.key ORDER BY MIN(j.id), MIN(m.id)
                """, arguments: arguments)
        }
    }

    /// Calls `body` with each job the report covers, in order, without holding them all.
    public func forEachReportJob(_ query: ReportQuery, _ body: (ReportJob) throws -> Void) throws {
        try database.read { db in
            let (filter, arguments) = query.filter
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT b.name AS batch, j.row_key, j.source_line, j.prompt, j.audio_length, j.state, j.task_id,
                       j.conversion_id, j.eta, j.credit_estimate, j.conversion_cost, j.remote_status, j.audio_url,
                       j.download_path, j.submitted_at, j.completed_at, j.attempt_count, j.last_error, j.metadata
                FROM jobs j JOIN batches b ON b.id = j.batch_id
                WHERE \(filter) ORDER BY b.name, j.id
                """, arguments: arguments)
            while let row = try cursor.next() { try body(ReportJob(row: row)) }
        }
    }
}

/// One job as `report --jobs` shows it.
public struct ReportJob: Sendable {
    public static let columns = ["batch", "row_key", "source_line", "prompt", "audio_length", "state", "task_id",
                                 "conversion_id", "eta", "credit_estimate", "conversion_cost", "remote_status", "audio_url",
                                 "downloaded_file", "submitted_at", "completed_at", "attempts", "last_error"]
    /// Columns soundbatch writes as numbers.
    public static let numeric: Set<String> = ["source_line", "audio_length", "eta", "credit_estimate", "conversion_cost", "attempts"]

    public var values: [String: ReportValue]
    public var metadata: [String: String]

    init(row: Row) {
        var values: [String: ReportValue] = [:]
        for column in Self.columns {
            let name = switch column {
            case "downloaded_file": "download_path"
            case "attempts": "attempt_count"
            default: column
            }
            switch row[name] as DatabaseValue? {
            case nil: values[column] = .none
            case let value?:
                switch value.storage {
                case let .int64(number): values[column] = .number(Double(number), decimals: 0)
                case let .double(number): values[column] = .number(number, decimals: 2)
                case let .string(text): values[column] = .text(text)
                default: values[column] = .none
                }
            }
        }
        self.values = values
        let json: String? = row["metadata"]
        metadata = json.flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:]
    }
}

/// A cell of a report.
public enum ReportValue: Sendable, Equatable {
    case none
    case number(Double, decimals: Int)
    case text(String)
}
