import Foundation

/// One line of `report --jobs`: a take of a job (every take is a line, so that the lines add
/// up to the totals), the columns below, then the metadata values.
public struct ReportJob: Sendable {
    public static let columns = [
        "batch", "row_key", "take", "source_line", "prompt", "audio_length", "state", "task_id",
        "conversion_id", "eta", "credit_estimate", "conversion_cost", "request_in_doubt", "verdict", "remote_status",
        "audio_url", "downloaded_file", "submitted_at", "completed_at", "attempts", "last_error", "reason",
        "findings", "loudness_lufs", "true_peak_dbtp"
    ]

    /// The row's own columns go apart from these: under "columns" in JSON, and with this
    /// before their names in CSV and Markdown, so that a column called `state` is never
    /// taken for the job's.
    public static let ownColumnPrefix = "column:"

    /// Where the line goes: lines come in the order of their batch, job and take.
    public var batchID: Int64
    public var jobID: Int64
    /// The row is known by its content, not an id: people know it by its line.
    public var keyedByContent: Bool
    public var values: [ReportValue]

    /// Where a line's fields are in the rows of a report's query (`LedgerBackend.forEachReportJob`):
    /// found by name once, for all its rows (a million, for an export).
    public struct Layout: Sendable {
        let batchID: Int
        let jobID: Int
        let keyedByContent: Int
        let values: [Int]

        /// The columns above, then the row's own as `column1`, `column2`...
        public init(_ columns: ResultColumns, ownColumns: Int) throws {
            batchID = try columns.position(of: "batch_id")
            jobID = try columns.position(of: "id")
            keyedByContent = try columns.position(of: "keyed_by_content")
            values = try (ReportJob.columns + (0..<ownColumns).map { "column\($0 + 1)" }).map(columns.position(of:))
        }
    }

    public init(row: LedgerRow, layout: Layout) throws {
        batchID = try Int64(ledgerValue: row.values[layout.batchID])
        jobID = try Int64(ledgerValue: row.values[layout.jobID])
        keyedByContent = try Bool(ledgerValue: row.values[layout.keyedByContent])
        values = layout.values.map { ReportValue(row.values[$0]) }
    }

    private static let positions = Dictionary(uniqueKeysWithValues: columns.enumerated().map { ($1, $0) })
    private static let statePosition = positions["state"]!
    static let findingsPosition = positions["findings"]!

    /// The line, if its state is one this soundbatch knows: nothing is reported as something
    /// it is not, nor left out without a word (`LedgerError.unknownState`).
    func known() throws -> ReportJob {
        guard case let .text(state) = values[Self.statePosition], JobState(rawValue: state) == nil else {
            return self
        }
        let row: String
        switch (keyedByContent, value("row_key"), value("source_line")) {
        case let (false, .text(key), _): row = key
        case let (true, _, .number(line, _)): row = "line \(Int(line))"
        default: row = "a job"
        }
        throw LedgerError.unknownState(row: row, state: state)
    }

    public func value(_ column: String) -> ReportValue {
        Self.positions[column].map { values[$0] } ?? .none
    }
}

extension ReportLedger {
    /// Every take of every job the report covers, as lines of `report --jobs`, in order: a
    /// job's earlier takes, then its current one. Jobs stream; earlier takes are few, and held.
    public func forEachReportLine(
        _ query: ReportQuery, metadataKeys: [String], _ body: (ReportJob) throws -> Void
    ) async throws {
        var earlier = try await earlierTakes(query, metadataKeys: metadataKeys)[...]
        func comesFirst(_ take: ReportJob, before job: ReportJob) -> Bool {
            (take.batchID, take.jobID) <= (job.batchID, job.jobID)
        }
        try await forEachReportJob(query, metadataKeys: metadataKeys) { job in
            while let take = earlier.first, comesFirst(take, before: job) { try body(earlier.removeFirst().known()) }
            try body(job.known())
        }
        for take in earlier { try body(take.known()) }
    }
}

/// A cell of a report.
public enum ReportValue: Sendable, Equatable {
    case none
    case number(Double, decimals: Int)
    case text(String)
}
