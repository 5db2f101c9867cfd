import Foundation

// `LedgerRows` (`ledger copy`), written once over `LedgerBackend`.
extension LedgerBackend {
    public func columns(of table: LedgerTable) async throws -> [String] {
        try await rows(dialect.columnNames(of: table.rawValue)).map { try $0["name"] }
    }

    public func holdsBatches() async throws -> Bool {
        try await value("SELECT CASE WHEN EXISTS (SELECT 1 FROM batches) THEN 1 ELSE 0 END")
    }

    public func rows(of table: LedgerTable, columns: [String], afterID: Int64, limit: Int) async throws -> [LedgerRow] {
        try await scan(
            """
            SELECT \(LedgerSQL.columnList(columns)) FROM \(raw: table.rawValue) WHERE id > \(afterID) ORDER BY id LIMIT \(limit)
            """)
    }

    public func add(_ rows: [LedgerRow], to table: LedgerTable, columns: [String]) async throws {
        // A statement's values are limited (SQLite: 32,766): rows go a few hundred at a time.
        let perStatement = max(1, 30_000 / max(columns.count, 1))
        try await transaction { db in
            for start in stride(from: 0, to: rows.count, by: perStatement) {
                let tuples = try rows[start..<min(start + perStatement, rows.count)].map { row in
                    let values = try columns.map { SQLValue(try row.value($0)) }
                    return "(\(list: values))" as SQL
                }
                try await db.run(
                    """
                    INSERT INTO \(raw: table.rawValue) (\(LedgerSQL.columnList(columns)))
                    VALUES \(SQL.joined(tuples, separator: ", "))
                    """)
            }
        }
    }

    public func removeAll() async throws {
        try await transaction { db in
            for table in LedgerTable.allCases.reversed() { try await db.run("DELETE FROM \(raw: table.rawValue)") }
        }
    }
}

extension SQLValue: SQLBindable {
    /// A ledger's value, copied as it is: a null's kind is the column's it goes into.
    public init(_ value: LedgerValue) {
        switch value {
        case .null: self = .null
        case let .integer(number): self = .integer(number)
        case let .real(number): self = .real(number)
        case let .text(text): self = .text(text)
        case let .bytes(bytes): self = .bytes(bytes)
        }
    }

    public var sqlValue: SQLValue { self }
    public static var sqlNull: SQLValue { .null }
}
