import Foundation

/// A table of the ledger, in the order a copy fills them: each after those it refers to.
public enum LedgerTable: String, CaseIterable, Sendable {
    case batches, ingests
    case ingestRows = "ingest_rows"
    case jobs, attempts, takes, checks
}

/// A value in a ledger's row, as both backends hold it.
public enum LedgerValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case bytes([UInt8])
}

extension ReportValue {
    /// As a report shows a ledger's value: numbers stay numbers (two decimals for reals),
    /// text stays text.
    public init(_ value: LedgerValue) {
        switch value {
        case .null: self = .none
        case let .integer(number): self = .number(Double(number), decimals: 0)
        case let .real(number): self = .number(number, decimals: 2)
        case let .text(text): self = .text(text)
        case let .bytes(bytes): self = .text("\(bytes.count) bytes")
        }
    }
}

/// The rows of a ledger as they are, for moving a ledger from one backend to the other
/// (`soundbatch ledger copy`): every batch, feed (and the rows its file held), job, attempt and earlier take, with their
/// ids, so that what refers to what stays as it was.
public protocol LedgerRows: Sendable {
    /// The columns of `table` (the same names on both backends; PostgreSQL has more, for its runners).
    func columns(of table: LedgerTable) async throws -> [String]

    /// Whether the ledger holds a batch.
    func holdsBatches() async throws -> Bool

    /// Up to `limit` rows of `table` with ids above `afterID`, in id order, as values of `columns`.
    func rows(of table: LedgerTable, columns: [String], afterID: Int64, limit: Int) async throws -> [LedgerRow]

    /// Adds rows to `table`, their ids kept, in one transaction.
    func add(_ rows: [LedgerRow], to table: LedgerTable, columns: [String]) async throws

    /// Readies the ledger for new rows after rows were added with their own ids (PostgreSQL
    /// numbers new rows from a counter of its own).
    func renumberAfterAdding() async throws

    /// Removes every row: after a copy into this (empty) ledger failed half-way.
    func removeAll() async throws
}

public enum LedgerCopyError: Error, CustomStringConvertible {
    case targetNotEmpty(String)

    public var description: String {
        switch self {
        case let .targetNotEmpty(location):
            "the ledger \(location) already holds batches; copy into a new, empty one (nothing was changed)"
        }
    }
}

extension LedgerRows {
    /// Copies every row of `source` into this ledger, which must hold no batch. When a step
    /// fails, what was copied is removed again: the target is left empty, as it was.
    /// Returns how many rows of each table were copied.
    public func copy(from source: any LedgerRows, location: String) async throws -> [LedgerTable: Int] {
        if try await holdsBatches() { throw LedgerCopyError.targetNotEmpty(location) }
        var copied: [LedgerTable: Int] = [:]
        do {
            for table in LedgerTable.allCases {
                let here = Set(try await columns(of: table))
                // The columns both hold: PostgreSQL's runner claims stay behind.
                let columns = try await source.columns(of: table).filter(here.contains)
                guard columns.contains("id") else { continue }
                var after: Int64 = 0
                while true {
                    let rows = try await source.rows(of: table, columns: columns, afterID: after, limit: 1000)
                    guard let last = rows.last else { break }
                    let lastID: Int64 = try last["id"]
                    try await add(rows, to: table, columns: columns)
                    copied[table, default: 0] += rows.count
                    after = lastID
                }
            }
            try await renumberAfterAdding()
        } catch {
            try? await removeAll()
            throw error
        }
        return copied
    }
}
