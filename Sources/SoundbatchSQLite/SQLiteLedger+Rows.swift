import Foundation
import GRDB
import SoundbatchCore

extension SQLiteLedger {
    public func columns(of table: LedgerTable) async throws -> [String] {
        try await read { db in try db.columns(in: table.rawValue).map(\.name) }
    }

    public func holdsBatches() async throws -> Bool {
        try await read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM batches)") ?? false }
    }

    public func rows(
        of table: LedgerTable, columns: [String], afterID: Int64, limit: Int
    ) async throws
        -> [[LedgerValue]]
    {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(LedgerSQL.columnList(columns)) FROM \(table.rawValue)
                    WHERE id > ? ORDER BY id LIMIT ?
                    """, arguments: [afterID, limit]
            ).map { row in (0..<row.count).map { LedgerValue(row[$0]) } }
        }
    }

    public func add(_ rows: [[LedgerValue]], to table: LedgerTable, columns: [String]) async throws {
        try await write { db in
            let statement = try db.makeStatement(
                sql: """
                    INSERT INTO \(table.rawValue) (\(LedgerSQL.columnList(columns)))
                    VALUES (\(databaseQuestionMarks(count: columns.count)))
                    """)
            for row in rows {
                try statement.execute(
                    arguments: StatementArguments(
                        row.map { value -> DatabaseValue in
                            switch value {
                            case .null: .null
                            case let .integer(number): number.databaseValue
                            case let .real(number): number.databaseValue
                            case let .text(text): text.databaseValue
                            }
                        }))
            }
        }
    }

    /// SQLite numbers new rows after the largest id: nothing to do.
    public func renumberAfterAdding() async throws {}

    public func removeAll() async throws {
        try await write { db in
            for table in LedgerTable.allCases.reversed() { try db.execute(sql: "DELETE FROM \(table.rawValue)") }
        }
    }
}

extension LedgerValue {
    /// A SQLite value as the ledger holds it (it holds no blobs).
    init(_ value: DatabaseValue) {
        switch value.storage {
        case let .int64(number): self = .integer(number)
        case let .double(number): self = .real(number)
        case let .string(text): self = .text(text)
        case .null, .blob: self = .null
        }
    }
}
