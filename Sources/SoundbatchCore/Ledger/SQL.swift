/// A statement with the values it carries: `"UPDATE jobs SET state = \(next) WHERE id = \(id)"`
/// binds `next` and `id` as values, never as text, and each backend writes the placeholders
/// its database reads (`?5` on SQLite, `$5` on PostgreSQL), as GRDB's `SQL` literal and
/// postgres-nio's `PostgresQuery` do. A fragment interpolated is part of the statement
/// (`\(LedgerSQL.reason())`); text that is SQL, never a value, goes in with `\(raw:)`.
public struct SQL: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    enum Piece: Sendable {
        case text(String)
        case value(SQLValue)
    }

    private(set) var pieces: [Piece]

    public init(stringLiteral text: String) { pieces = [.text(text)] }

    public init(stringInterpolation: StringInterpolation) { pieces = stringInterpolation.pieces }

    public struct StringInterpolation: StringInterpolationProtocol {
        var pieces: [Piece] = []

        public init(literalCapacity: Int, interpolationCount: Int) {}

        public mutating func appendLiteral(_ literal: String) { pieces.append(.text(literal)) }

        /// A value, bound.
        public mutating func appendInterpolation(_ value: some SQLBindable) { pieces.append(.value(value.sqlValue)) }

        /// A value or a null, bound.
        public mutating func appendInterpolation<Value: SQLBindable>(_ value: Value?) {
            pieces.append(.value(value.sqlValue))
        }

        /// A fragment of SQL, with the values it carries.
        public mutating func appendInterpolation(_ fragment: SQL) { pieces += fragment.pieces }

        /// SQL text written here (a column's name, a keyword), never a value from outside.
        public mutating func appendInterpolation(raw text: String) { pieces.append(.text(text)) }

        /// Values as a list for `IN (...)`; `NULL` when there are none, which matches nothing.
        public mutating func appendInterpolation(list values: [some SQLBindable]) {
            guard !values.isEmpty else { return pieces.append(.text("NULL")) }
            for (index, value) in values.enumerated() {
                if index > 0 { pieces.append(.text(", ")) }
                pieces.append(.value(value.sqlValue))
            }
        }
    }

    /// The fragments with `separator` between them.
    public static func joined(_ fragments: [SQL], separator: String) -> SQL {
        var joined = SQL(stringLiteral: "")
        for (index, fragment) in fragments.enumerated() {
            if index > 0 { joined.pieces.append(.text(separator)) }
            joined.pieces += fragment.pieces
        }
        return joined
    }

    public static func + (left: SQL, right: SQL) -> SQL {
        var sum = left
        sum.pieces += right.pieces
        return sum
    }

    /// The text a database reads, with `placeholder(n, value)` for the n-th value (from 1),
    /// and the values.
    public func rendered(placeholder: (Int, SQLValue) -> String) -> (text: String, values: [SQLValue]) {
        var text = ""
        var values: [SQLValue] = []
        for piece in pieces {
            switch piece {
            case let .text(part): text += part
            case let .value(value):
                values.append(value)
                text += placeholder(values.count, value)
            }
        }
        return (text, values)
    }

    /// The statement with `?` for each value: for messages and tests, never for a database.
    public var description: String { rendered { _, _ in "?" }.text }
}

/// A value bound to a statement. A null keeps the kind of value it stands for: PostgreSQL
/// must know a parameter's type when nothing else in the statement tells it.
public enum SQLValue: Sendable, Equatable {
    case integer(Int64?)
    case real(Double?)
    case text(String?)
    /// Bytes: a chunk of a stored sound (PostgreSQL's bytea).
    case bytes([UInt8]?)
    /// A null of no kind of its own: the statement tells it (the column it goes into).
    case null
}

/// What can be bound to a statement.
public protocol SQLBindable: Sendable {
    var sqlValue: SQLValue { get }
    /// The null of this kind of value.
    static var sqlNull: SQLValue { get }
}

extension Int64: SQLBindable {
    public var sqlValue: SQLValue { .integer(self) }
    public static var sqlNull: SQLValue { .integer(nil) }
}

extension Int: SQLBindable {
    public var sqlValue: SQLValue { .integer(Int64(self)) }
    public static var sqlNull: SQLValue { .integer(nil) }
}

extension Double: SQLBindable {
    public var sqlValue: SQLValue { .real(self) }
    public static var sqlNull: SQLValue { .real(nil) }
}

extension String: SQLBindable {
    public var sqlValue: SQLValue { .text(self) }
    public static var sqlNull: SQLValue { .text(nil) }
}

extension [UInt8]: SQLBindable {
    public var sqlValue: SQLValue { .bytes(self) }
    public static var sqlNull: SQLValue { .bytes(nil) }
}

/// Flags are integers, 0 and 1, on both backends.
extension Bool: SQLBindable {
    public var sqlValue: SQLValue { .integer(self ? 1 : 0) }
    public static var sqlNull: SQLValue { .integer(nil) }
}

extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? Wrapped.sqlNull }
    public static var sqlNull: SQLValue { Wrapped.sqlNull }
}

/// The ledger's words (states, verdicts, outcomes) are kept as their raw text.
extension SQLBindable where Self: RawRepresentable, RawValue == String {
    public var sqlValue: SQLValue { .text(rawValue) }
    public static var sqlNull: SQLValue { .text(nil) }
}

extension JobState: SQLBindable {}
extension Verdict: SQLBindable {}
extension AttemptKind: SQLBindable {}
extension AttemptOutcome: SQLBindable {}
