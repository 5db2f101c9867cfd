/// A row of a statement's result, read by column name: `let state: JobState = try row["state"]`.
public struct LedgerRow: Sendable {
    public let columns: ResultColumns
    public let values: [LedgerValue]

    public init(columns: ResultColumns, values: [LedgerValue]) {
        self.columns = columns
        self.values = values
    }

    /// The value of `column`, as `T`. A column the statement does not have, or a value that
    /// is not a `T`, is the ledger failing; a state this soundbatch does not know names the row.
    public subscript<T: LedgerDecodable>(_ column: String) -> T {
        get throws {
            let value = try self.value(column)
            do {
                return try T(ledgerValue: value)
            } catch let unknown as UnknownState {
                throw LedgerError.unknownState(row: (try? rowName) ?? "", state: unknown.text)
            } catch {
                throw LedgerError.failed(reason: "the column \(column) holds \(value), which is no \(T.self)")
            }
        }
    }

    /// The value of `column`, as the ledger holds it.
    public func value(_ column: String) throws -> LedgerValue {
        guard let index = columns.index[column] else {
            throw LedgerError.failed(reason: "a statement read no column \(column)")
        }
        return values[index]
    }

    /// The row as a person finds it (`RowName`), from `LedgerSQL.rowNameColumns`; else the
    /// job's number in the ledger.
    public var rowName: String {
        get throws {
            guard columns.index["row_key"] != nil else {
                let id: Int64? = try? self["id"]
                return id.map { "job \($0)" } ?? "a job"
            }
            func optional<T: LedgerDecodable>(_ column: String) throws -> T? {
                columns.index[column] == nil ? nil : try self[column] as T?
            }
            return RowName.of(
                rowKey: try self["row_key"], keyedByContent: try optional("keyed_by_content") ?? false,
                sourceFile: try optional("source_file"), line: try optional("source_line") ?? 0,
                prompt: try optional("prompt") ?? "", variation: try optional("variation") ?? 1)
        }
    }
}

/// The names of a result's columns, shared by its rows.
public final class ResultColumns: Sendable {
    public let names: [String]
    let index: [String: Int]

    public init(_ names: [String]) {
        self.names = names
        var index: [String: Int] = [:]
        for (position, name) in names.enumerated() where index[name] == nil { index[name] = position }
        self.index = index
    }

    /// Where column `name` is in each row.
    public func position(of name: String) throws -> Int {
        guard let position = index[name] else { throw LedgerError.failed(reason: "a statement read no column \(name)") }
        return position
    }
}

/// A value a ledger's column can be read as.
public protocol LedgerDecodable {
    init(ledgerValue: LedgerValue) throws
}

private struct NotThisType: Error {}

/// A state the ledger holds that this soundbatch does not know (`LedgerError.unknownState`).
struct UnknownState: Error {
    var text: String
}

extension Int64: LedgerDecodable {
    public init(ledgerValue: LedgerValue) throws {
        switch ledgerValue {
        case let .integer(number): self = number
        // PostgreSQL sums big integers as numerics.
        case let .real(number) where number.rounded() == number: self = Int64(number)
        case let .text(text) where Int64(text) != nil: self = Int64(text)!
        default: throw NotThisType()
        }
    }
}

extension Int: LedgerDecodable {
    public init(ledgerValue: LedgerValue) throws { self = Int(try Int64(ledgerValue: ledgerValue)) }
}

extension Double: LedgerDecodable {
    public init(ledgerValue: LedgerValue) throws {
        switch ledgerValue {
        case let .real(number): self = number
        case let .integer(number): self = Double(number)
        default: throw NotThisType()
        }
    }
}

extension String: LedgerDecodable {
    public init(ledgerValue: LedgerValue) throws {
        switch ledgerValue {
        case let .text(text): self = text
        case let .integer(number): self = String(number)
        default: throw NotThisType()
        }
    }
}

extension [UInt8]: LedgerDecodable {
    public init(ledgerValue: LedgerValue) throws {
        guard case let .bytes(bytes) = ledgerValue else { throw NotThisType() }
        self = bytes
    }
}

/// Flags are integers, 0 and 1.
extension Bool: LedgerDecodable {
    public init(ledgerValue: LedgerValue) throws { self = try Int64(ledgerValue: ledgerValue) != 0 }
}

extension Optional: LedgerDecodable where Wrapped: LedgerDecodable {
    public init(ledgerValue: LedgerValue) throws {
        self = ledgerValue == .null ? nil : try Wrapped(ledgerValue: ledgerValue)
    }
}

extension JobState: LedgerDecodable {
    /// A state this soundbatch does not know is a ledger from a newer one, or a hand's edit:
    /// it stops the command rather than be taken for another.
    public init(ledgerValue: LedgerValue) throws {
        let text = try String(ledgerValue: ledgerValue)
        guard let state = JobState(rawValue: text) else { throw UnknownState(text: text) }
        self = state
    }
}

extension Verdict: LedgerDecodable {
    public init(ledgerValue: LedgerValue) throws {
        guard let verdict = Verdict(rawValue: try String(ledgerValue: ledgerValue)) else { throw NotThisType() }
        self = verdict
    }
}
