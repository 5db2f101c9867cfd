import GRDB
import GRDBSQLite

/// A prepared statement run through SQLite's C API, for the one hot loop of a feed.
///
/// GRDB's `execute(arguments:)` builds a `StatementArguments` of boxed values for each
/// call; in a million-row feed that was a quarter of the time outside SQLite itself.
/// Everywhere else, use GRDB.
struct FastStatement {
    enum Value {
        case integer(Int64)
        case text(String)
        case null
    }

    private let statement: Statement
    private let sql: String

    init(_ db: Database, sql: String) throws {
        statement = try db.makeStatement(sql: sql)
        self.sql = sql
    }

    /// Binds the values in order and runs the statement to completion.
    func run(_ values: Value...) throws {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            switch value {
            case let .integer(number):
                sqlite3_bind_int64(handle, index, number)
            case var .text(text):
                text.withUTF8 { bytes in
                    _ = sqlite3_bind_text(handle, index, bytes.baseAddress, Int32(bytes.count), transient)
                }
            case .null:
                sqlite3_bind_null(handle, index)
            }
        }
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else {
            let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(handle)))
            sqlite3_reset(handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
        }
    }
}

/// SQLITE_TRANSIENT: SQLite copies the bytes before the call returns.
private let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
