import GRDB
import GRDBSQLite
import SoundbatchCore

/// A prepared statement run through SQLite's C API, for the hot loops that touch every
/// job: the feed's inserts, the report's totals and its per-job export.
///
/// GRDB's `execute(arguments:)` builds a `StatementArguments` of boxed values for each
/// call; in a million-row feed that was a quarter of the time outside SQLite itself. And
/// SQLite's own GROUP BY sorts every row first: 2.4 s for a million jobs, against 0.6 s
/// for one scan summed up here. That scan read through a GRDB row cursor instead took
/// 0.49 to 0.52 s against 0.35 to 0.36 s read here (`scripts/bench-report.sh`, a million
/// jobs, release build, three runs each, 2026-11-27). The export of a million jobs' lines
/// read through a GRDB row cursor spent 6% of its time finding generic metadata for each
/// value it decoded. Everywhere else, use GRDB.
struct FastStatement {
    enum Value {
        case integer(Int64)
        case text(String)
        /// Text borrowed for the call only: SQLite copies it before the call returns.
        case bytes(UnsafeBufferPointer<UInt8>)
        case null
    }

    private let statement: Statement
    private let sql: String

    init(_ db: Database, text: String) throws {
        statement = try db.makeStatement(sql: text)
        sql = text
    }

    /// A statement whose values GRDB binds, once: `forEachRow([])` then reads it.
    init(_ db: Database, sql: SQL) throws {
        let (text, values) = sql.rendered { number, _ in "?\(number)" }
        try self.init(db, text: text)
        try statement.setArguments(StatementArguments(values.map(\.databaseValue)))
    }

    var columnNames: [String] { statement.columnNames }

    /// Binds values that stay the same for every run, from parameter `first` on: SQLite
    /// keeps a binding until it is replaced, so `run` need not pass them each time.
    func bindOnce(from first: Int32, _ values: [Value]) {
        bind(values, from: first)
    }

    /// Binds the values in order, from parameter `first`, and runs the statement to completion.
    func run(_ values: [Value], from first: Int32 = 1) throws {
        let handle = bind(values, from: first)
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else {
            let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(handle)))
            sqlite3_reset(handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
        }
    }

    /// Resets the statement and binds the values in order from parameter `first`; returns its handle.
    @discardableResult
    private func bind(_ values: [Value], from first: Int32 = 1) -> OpaquePointer {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        func bindText(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int32) {
            if let address = bytes.baseAddress {
                _ = sqlite3_bind_text(handle, index, address, Int32(bytes.count), transient)
            } else {
                _ = sqlite3_bind_text(handle, index, "", 0, transient)  // empty text; no address is NULL
            }
        }
        for (offset, value) in values.enumerated() {
            let index = first + Int32(offset)
            switch value {
            case let .integer(number):
                sqlite3_bind_int64(handle, index, number)
            case var .text(text):
                text.withUTF8 { bindText($0, at: index) }
            case let .bytes(bytes):
                bindText(bytes, at: index)
            case .null:
                sqlite3_bind_null(handle, index)
            }
        }
        return handle
    }
}

extension FastStatement {
    /// The current row of a query, read column by column without making values.
    struct Columns {
        fileprivate let handle: OpaquePointer

        func isNull(_ index: Int32) -> Bool { sqlite3_column_type(handle, index) == SQLITE_NULL }
        func int64(_ index: Int32) -> Int64 { sqlite3_column_int64(handle, index) }
        func double(_ index: Int32) -> Double { sqlite3_column_double(handle, index) }

        /// The row's columns as the core reads a ledger's row.
        var ledgerValues: [LedgerValue] {
            (0..<sqlite3_column_count(handle)).map { index in
                switch sqlite3_column_type(handle, index) {
                case SQLITE_INTEGER: .integer(int64(index))
                case SQLITE_FLOAT: .real(double(index))
                case SQLITE_NULL: .null
                default: .text(String(decoding: bytes(index), as: UTF8.self))
                }
            }
        }

        /// The text's bytes, valid until the next row.
        func bytes(_ index: Int32) -> UnsafeBufferPointer<UInt8> {
            guard let pointer = sqlite3_column_text(handle, index) else {
                return UnsafeBufferPointer(start: nil, count: 0)
            }
            return UnsafeBufferPointer(start: pointer, count: Int(sqlite3_column_bytes(handle, index)))
        }
    }

    /// Binds the values (from parameter `first`) and calls `body` with each row of the result.
    func forEachRow(_ values: [Value], from first: Int32 = 1, _ body: (Columns) throws -> Void) throws {
        let handle = bind(values, from: first)
        defer { sqlite3_reset(handle) }
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { return }
            guard code == SQLITE_ROW else {
                let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(handle)))
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
            }
            try body(Columns(handle: handle))
        }
    }
}

/// SQLITE_TRANSIENT: SQLite copies the bytes before the call returns.
private let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
