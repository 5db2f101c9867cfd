/// The SQL both backends share: standard SQL over the ledger's columns, which are the same
/// on SQLite and PostgreSQL, so that each rule here is written once and reads the same on both.
public enum LedgerSQL {
    /// The states of jobs that failed for good, as an SQL list; written from `JobState`, so
    /// that no state is spelled by hand in a query.
    public static let failedForGood = JobState.failedForGood.map { "'\($0.rawValue)'" }.joined(separator: ", ")

    /// Why a job `j` failed, in words: the service's own for a failed generation, else the last error.
    public static let reason = """
        CASE WHEN j.state = '\(JobState.generationFailed.rawValue)'
             THEN COALESCE(j.status_msg, j.last_error, 'the service could not generate it')
             WHEN j.state IN (\(failedForGood), '\(JobState.invalid.rawValue)') THEN j.last_error
        END
        """

    /// Column names, quoted, for a SELECT or INSERT of them (`ledger copy`).
    public static func columnList(_ columns: [String]) -> String {
        columns.map { "\"\($0)\"" }.joined(separator: ", ")
    }

    /// What a job's `RowName` is made of, from `jobs` as `table` names it in the query.
    public static func rowNameColumns(_ table: String = "jobs") -> String {
        """
        \(table).row_key, \(table).keyed_by_content, \(table).source_line, \(table).prompt,
        (SELECT source_file FROM ingests WHERE ingests.id = \(table).ingest_id) AS source_file
        """
    }
}

/// A set of job ids, a bit each: ids are dense, from 1. 125 KB for a million.
public struct IDSet: Sendable {
    private var words: [UInt64] = []

    public init() {}

    public func contains(_ id: Int64) -> Bool {
        let word = Int(id >> 6)
        return word < words.count && words[word] & (1 << UInt64(id & 63)) != 0
    }

    public mutating func insert(_ ids: ClosedRange<Int64>) {
        let needed = Int(ids.upperBound >> 6) + 1
        if needed > words.count { words += repeatElement(0, count: max(needed - words.count, words.count)) }
        for id in ids { words[Int(id >> 6)] |= 1 << UInt64(id & 63) }
    }
}
