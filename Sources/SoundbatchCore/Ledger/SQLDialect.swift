/// Where the two databases' SQL differs, said for both in one place: the rules write
/// standard SQL over the same tables and columns, and ask here for the rest.
public enum SQLDialect: Sendable {
    case sqlite, postgres

    /// How the n-th bound value (from 1) is written.
    public func placeholder(_ number: Int) -> String {
        switch self {
        case .sqlite: "?\(number)"
        case .postgres: "$\(number)"
        }
    }

    /// What ends a SELECT of rows the transaction goes on to change: on a server each is
    /// locked until it ends; SQLite's BEGIN IMMEDIATE has locked the whole file already.
    public var lockingRows: SQL {
        switch self {
        case .sqlite: ""
        case .postgres: " FOR UPDATE"
        }
    }

    /// The text of member `key` of the JSON object in `column` (a row's own columns).
    public func jsonText(_ column: String, _ key: String) -> SQL {
        switch self {
        case .postgres: "\(raw: column)::json ->> \(key)"
        // A JSON path cannot name a key holding a quote, a backslash or a control
        // character; json_each can, more slowly, so only those take it.
        case .sqlite where key.unicodeScalars.contains { $0 == "\"" || $0 == "\\" || $0.value < 0x20 }:
            "(SELECT value FROM json_each(\(raw: column)) WHERE key = \(key))"
        case .sqlite: "json_extract(\(raw: column), \("$.\"" + key + "\""))"
        }
    }

    /// Member `key` of the JSON object in `column` as an integer; null when it is empty.
    public func jsonInteger(_ column: String, _ key: String) -> SQL {
        switch self {
        case .sqlite: "CAST(NULLIF(TRIM(json_extract(\(raw: column), '$.\(raw: key)')), '') AS INTEGER)"
        case .postgres: "NULLIF(TRIM(\(raw: column)::jsonb ->> '\(raw: key)'), '')::integer"
        }
    }

    /// A FROM item: the members of the JSON object in `column` as rows `m`, with their
    /// `key`, and an `id` that orders them as the object does.
    public func jsonMembers(_ column: String) -> SQL {
        switch self {
        case .sqlite: "json_each(\(raw: column)) m"
        case .postgres: "json_each(\(raw: column)::json) WITH ORDINALITY AS m(key, value, id)"
        }
    }

    /// The seconds from one ISO 8601 time to another, both text columns.
    public func secondsBetween(_ start: String, _ end: String) -> SQL {
        switch self {
        case .sqlite: "(julianday(\(raw: end)) - julianday(\(raw: start))) * 86400"
        case .postgres: "EXTRACT(EPOCH FROM (\(raw: end)::timestamptz - \(raw: start)::timestamptz))::float8"
        }
    }

    /// The names of a table's columns, in order, as rows of `name`.
    public func columnNames(of table: String) -> SQL {
        switch self {
        case .sqlite: "SELECT name FROM pragma_table_info(\(table)) ORDER BY cid"
        case .postgres:
            """
            SELECT column_name::text AS name FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = \(table) ORDER BY ordinal_position
            """
        }
    }

    /// `jobs` read through the index of tasks: SQLite's planner otherwise walks the batch's
    /// jobs to find the few that have one; PostgreSQL's finds its partial index itself.
    public var jobsByTask: SQL {
        switch self {
        case .sqlite: "jobs INDEXED BY jobs_by_task"
        case .postgres: "jobs"
        }
    }
}
