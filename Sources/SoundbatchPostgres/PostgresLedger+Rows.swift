import Foundation
import PostgresNIO
import SoundbatchCore

extension PostgresLedger {
    public func columns(of table: LedgerTable) async throws -> [String] {
        try await rows(
            """
            SELECT column_name::text FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = \(table.rawValue) ORDER BY ordinal_position
            """
        ).map { try $0.decode(String.self) }
    }

    public func holdsBatches() async throws -> Bool {
        try await rows("SELECT EXISTS (SELECT 1 FROM batches)")[0].decode(Bool.self)
    }

    public func rows(
        of table: LedgerTable, columns: [String], afterID: Int64, limit: Int
    ) async throws
        -> [[LedgerValue]]
    {
        try await report(
            PostgresQuery(
                unsafeSQL: """
                    SELECT \(LedgerSQL.columnList(columns)) FROM \(table.rawValue)
                    WHERE id > \(afterID) ORDER BY id LIMIT \(limit)
                    """)
        ).map { row in row.map(LedgerValue.init) }
    }

    public func add(_ rows: [[LedgerValue]], to table: LedgerTable, columns: [String]) async throws {
        guard !rows.isEmpty else { return }
        var binds = PostgresBindings(capacity: rows.count * columns.count)
        var values: [String] = []
        for row in rows {
            let first = binds.count + 1
            for value in row {
                switch value {
                case .null: binds.appendNull()
                case let .integer(number): binds.append(number)
                case let .real(number): binds.append(number)
                case let .text(text): binds.append(text)
                }
            }
            values.append("(" + (first..<first + row.count).map { "$\($0)" }.joined(separator: ", ") + ")")
        }
        try await self.rows(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO \(table.rawValue) (\(LedgerSQL.columnList(columns)))
                    VALUES \(values.joined(separator: ", "))
                    """, binds: binds))
    }

    public func renumberAfterAdding() async throws {
        for table in LedgerTable.allCases {
            try await rows(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT setval(pg_get_serial_sequence('\(table.rawValue)', 'id'),
                                      (SELECT COALESCE(MAX(id), 0) + 1 FROM \(table.rawValue)), false)
                        """))
        }
    }

    public func removeAll() async throws {
        try await transaction { connection in
            try await connection.query(
                "TRUNCATE takes, attempts, jobs, ingest_rows, ingests, runners, batches RESTART IDENTITY", logger: self.logger)
        }
    }
}

extension LedgerValue {
    /// A PostgreSQL cell as the ledger holds it: integers, reals and text, as on SQLite.
    init(_ cell: PostgresCell) {
        guard cell.bytes != nil else {
            self = .null
            return
        }
        switch cell.dataType {
        case .int2, .int4, .int8: self = (try? cell.decode(Int64.self)).map { .integer($0) } ?? .null
        case .float4, .float8, .numeric: self = (try? cell.decode(Double.self)).map { .real($0) } ?? .null
        default: self = (try? cell.decode(String.self)).map { .text($0) } ?? .null
        }
    }
}
