import SoundbatchCore
import SoundbatchSQLite

/// Opens the ledger at `location` with the backend it names: for now always a SQLite file.
/// The command line opens ledgers only through here, so it never depends on a backend.
/// With `create`, a missing ledger is made; else it is `LedgerError.missing`.
public func openLedger(at location: String, create: Bool) throws -> any LedgerStore {
    try SQLiteLedger(path: location, create: create)
}
