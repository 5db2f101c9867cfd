import SoundbatchCore
import SoundbatchSQLite

/// Opens the ledger at `location` with the backend it names: a `postgres://` URL names a
/// PostgreSQL database, anything else a SQLite file. The command line opens ledgers only
/// through here, so it never depends on a backend. With `create`, a missing ledger is
/// made; else it is `LedgerError.missing`.
public func openLedger(at location: String, create: Bool) throws -> any LedgerStore {
    if DatabaseURL.isDatabaseURL(location) {
        let url = try DatabaseURL(location)
        // The schema is in place (SoundbatchPostgres); the stages' queries come next.
        throw LedgerError.cannotOpen(
            path: url.description,
            reason: "batches cannot run on PostgreSQL yet (its tables are ready, its runners are not); "
                + "use a SQLite file for now")
    }
    return try SQLiteLedger(path: location, create: create)
}
