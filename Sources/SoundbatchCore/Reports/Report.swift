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

    /// The WHERE clause shared by every report query over `jobs j`, with its arguments.
    /// Resolves the batch's name first, so the scan needs no join.
    func filter(_ db: Database) throws -> (sql: String, arguments: StatementArguments) {
        let (sql, batchID) = try resolvedFilter(db)
        return (sql, [batchID, since, until])
    }

    /// The same, with the arguments for a FastStatement.
    func fastFilter(_ db: Database) throws -> (sql: String, values: [FastStatement.Value]) {
        let (sql, batchID) = try resolvedFilter(db)
        return (sql, [batchID.map { .integer($0) } ?? .null, since.map { .text($0) } ?? .null, until.map { .text($0) } ?? .null])
    }

    private func resolvedFilter(_ db: Database) throws -> (String, Int64?) {
        var batchID: Int64?
        if let batch {
            batchID = try Int64.fetchOne(db, sql: "SELECT id FROM batches WHERE name = ?", arguments: [batch])
            if batchID == nil {
                throw LedgerError.noSuchBatch(batch, known: try String.fetchAll(db, sql: "SELECT name FROM batches ORDER BY name"))
            }
        }
        return ("""
            (?1 IS NULL OR j.batch_id = ?1) AND (?2 IS NULL OR j.submitted_at >= ?2) AND (?3 IS NULL OR j.submitted_at < ?3)
            """, batchID)
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
    /// Jobs still running, or sent without an answer (ambiguous, or failed after an earlier
    /// request got none): no charge yet. What the running ones are estimated at.
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

    /// Counts one job in.
    /// `unanswered`: the job failed after an earlier request got no answer.
    mutating func count(state: JobState, estimate: Double?, cost: Double?, seconds: Double?,
                        submitted: UnsafeBufferPointer<UInt8>, unanswered: Bool) {
        jobs += 1
        states[state.rawValue, default: 0] += 1
        creditsEstimated += estimate ?? 0
        if let cost {
            creditsCharged += cost
            chargedJobs += 1
            estimatedForCharged += estimate ?? 0
            if let seconds {
                secondsForCharged += seconds
                chargedWithLength += cost
            }
        }
        switch state {
        case .submitted, .submitting:
            unchargedJobs += 1
            unchargedEstimate += estimate ?? 0
        case .ambiguous:
            unchargedJobs += 1
        case .failed where unanswered:
            unchargedJobs += 1  // the service may hold a task, and a charge, from that request
        default:
            break
        }
        // Timestamps sort as text: compare bytes, and make a String only for a new extreme.
        if submitted.count > 0 {
            if firstSubmitted.map({ submitted.lexicographicallyPrecedes($0.utf8) }) ?? true {
                firstSubmitted = String(decoding: submitted, as: UTF8.self)
            }
            if lastSubmitted.map({ $0.utf8.lexicographicallyPrecedes(submitted) }) ?? true {
                lastSubmitted = String(decoding: submitted, as: UTF8.self)
            }
        }
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
    /// Totals per group and overall, summed here in one scan of the jobs (see FastStatement).
    public func spendReport(_ query: ReportQuery) async throws -> SpendReport {
        try await database.read { db in
            let (filter, values) = try query.fastFilter(db)
            let names = try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT id, name FROM batches")
                .map { ($0["id"] as Int64, $0["name"] as String) })
            // The ledger's own flag on a job that failed after a request without an answer.
            let unanswered = "'" + Ledger.unansweredBefore.replacingOccurrences(of: "'", with: "''") + "'"
            let scan = try FastStatement(db, sql: """
                SELECT j.batch_id, j.state, j.credit_estimate, j.conversion_cost, j.audio_length, j.submitted_at,
                       j.state = 'failed' AND instr(j.last_error, \(unanswered)) > 0
                FROM jobs j WHERE \(filter)
                """)
            let states = JobState.allCases.map { Array($0.rawValue.utf8) }
            var groups: [String: SpendTotals] = [:]
            var batchKeys: [Int64: String] = [:]
            try scan.forEachRow(values) { row in
                let stateBytes = row.bytes(1)
                guard let stateIndex = states.firstIndex(where: { $0.elementsEqual(stateBytes) }) else { return }
                let state = JobState.allCases[stateIndex]
                let submitted = row.bytes(5)
                let key: String
                switch query.grouping {
                case .batch:
                    let id = row.int64(0)
                    if let known = batchKeys[id] { key = known } else {
                        key = names[id] ?? "?"
                        batchKeys[id] = key
                    }
                case .day: key = submitted.count >= 10 ? String(decoding: UnsafeBufferPointer(rebasing: submitted[0..<10]), as: UTF8.self) : "not submitted"
                case .state: key = state.rawValue
                }
                groups[key, default: SpendTotals.empty(key)].count(
                    state: state,
                    estimate: row.isNull(2) ? nil : row.double(2),
                    cost: row.isNull(3) ? nil : row.double(3),
                    seconds: row.isNull(4) ? nil : Double(row.int64(4)),
                    submitted: submitted,
                    unanswered: row.int64(6) != 0)
            }
            let sorted = groups.values.sorted { $0.group < $1.group }
            var total = SpendTotals.empty("total")
            for group in sorted { total.add(group) }
            return SpendReport(grouping: query.grouping.rawValue, groups: sorted, total: total)
        }
    }

    /// Cumulative credits estimated (by submission time) and charged (by completion time),
    /// per second, thinned to at most `points` points.
    public func creditTimeline(_ query: ReportQuery, points: Int = 300) async throws -> [CreditPoint] {
        try await database.read { db in
            let (filter, arguments) = try query.filter(db)
            let seconds = try Row.fetchAll(db, sql: """
                SELECT t, TOTAL(e) AS e, TOTAL(c) AS c FROM (
                    SELECT substr(j.submitted_at, 1, 19) AS t, j.credit_estimate AS e, NULL AS c
                    FROM jobs j WHERE \(filter) AND j.submitted_at IS NOT NULL
                    UNION ALL
                    SELECT substr(j.completed_at, 1, 19), NULL, j.conversion_cost
                    FROM jobs j WHERE \(filter) AND j.completed_at IS NOT NULL
                ) GROUP BY t ORDER BY t
                """, arguments: arguments)
            var estimated = 0.0, charged = 0.0
            let cumulative = seconds.map { row in
                estimated += row["e"]
                charged += row["c"]
                return CreditPoint(time: row["t"], estimated: estimated, charged: charged)
            }
            guard cumulative.count > points else { return cumulative }
            let step = Double(cumulative.count - 1) / Double(points - 1)
            return (0..<points).map { cumulative[Int((Double($0) * step).rounded())] }
        }
    }

    /// The metadata keys (extra CSV columns) of the jobs a report covers, in order of first use.
    public func metadataKeys(_ query: ReportQuery) async throws -> [String] {
        try await database.read { db in
            let (filter, arguments) = try query.filter(db)
            return try String.fetchAll(db, sql: """
                SELECT m.key FROM jobs j, json_each(j.metadata) m
                WHERE \(filter) AND j.metadata IS NOT NULL
                GROUP BY m.key ORDER BY MIN(j.id), MIN(m.id)
                """, arguments: arguments)
        }
    }

    /// Calls `body` with each job the report covers, in order, without holding them all.
    /// The metadata values come out of SQLite already, in the order of `metadataKeys`.
    public func forEachReportJob(_ query: ReportQuery, metadataKeys: [String], _ body: (ReportJob) throws -> Void) throws {
        try database.read { db in
            let (filter, arguments) = try query.filter(db)
            var allArguments = arguments
            var extracts = ""
            for (index, key) in metadataKeys.enumerated() {
                allArguments += ["$.\"" + key + "\""]
                extracts += ", json_extract(j.metadata, ?\(index + 4)) AS m\(index)"
            }
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT b.name AS batch, j.row_key, j.source_line, j.prompt, j.audio_length, j.state, j.task_id,
                       j.conversion_id, j.eta, j.credit_estimate, j.conversion_cost, j.remote_status, j.audio_url,
                       j.download_path, j.submitted_at, j.completed_at, j.attempt_count, j.last_error\(extracts)
                FROM jobs j JOIN batches b ON b.id = j.batch_id
                WHERE \(filter) ORDER BY j.batch_id, j.id
                """, arguments: allArguments)
            while let row = try cursor.next() { try body(ReportJob(row: row)) }
        }
    }
}

/// One job as `report --jobs` shows it: the columns below, then the metadata values.
public struct ReportJob: Sendable {
    public static let columns = ["batch", "row_key", "source_line", "prompt", "audio_length", "state", "task_id",
                                 "conversion_id", "eta", "credit_estimate", "conversion_cost", "remote_status", "audio_url",
                                 "downloaded_file", "submitted_at", "completed_at", "attempts", "last_error"]

    public var values: [ReportValue]

    init(row: Row) {
        values = (0..<row.count).map { index in
            let value: DatabaseValue = row[index]
            switch value.storage {
            case let .int64(number): return .number(Double(number), decimals: 0)
            case let .double(number): return .number(number, decimals: 2)
            case let .string(text): return .text(text)
            default: return .none
            }
        }
    }
}

/// A cell of a report.
public enum ReportValue: Sendable, Equatable {
    case none
    case number(Double, decimals: Int)
    case text(String)
}
