import Foundation
import Logging
import SoundbatchCore
import SoundbatchPostgres
import SoundbatchSQLite

/// Opens the ledger at `location` with the backend it names, for as long as `body` runs:
/// a `postgres://` URL names a PostgreSQL database, anything else a SQLite file. The
/// command line opens ledgers only through here, so it never depends on a backend. With
/// `create`, a missing ledger is made; else it is `LedgerError.missing`.
///
/// `$SOUNDBATCH_LEASE_SECONDS` shortens a PostgreSQL runner's lease (30 s): for tests
/// that kill runners and wait for their leases to run out.
public func withLedger<T: Sendable>(
    at location: String, create: Bool, logger: Logger = Logger(label: "soundbatch.ledger"),
    environment: [String: String] = ProcessInfo.processInfo.environment,
    _ body: (any LedgerStore) async throws -> T
) async throws -> T {
    if DatabaseURL.isOtherURL(location) {
        throw LedgerError.cannotOpen(
            path: DatabaseURL.masking(location),
            reason: "a ledger is a SQLite file or a postgres:// URL (postgres://USER@HOST:PORT/DATABASE)")
    }
    guard DatabaseURL.isDatabaseURL(location) else {
        let isNew = create && !FileManager.default.fileExists(atPath: location)
        let ledger = try SQLiteLedger(path: location, create: create)
        do {
            return try await body(ledger)
        } catch let refused as IngestError {
            // A ledger made for a file that was refused holds nothing: leave no file behind.
            if isNew, (try? await ledger.holdsBatches()) == false {
                for suffix in ["", "-wal", "-shm"] { unlink(location + suffix) }
            }
            throw refused
        }
    }
    let url = try DatabaseURL(location, environment: environment)
    let lease = environment["SOUNDBATCH_LEASE_SECONDS"].flatMap(Double.init).map { Duration.seconds($0) }
    return try await withPostgresLedger(url, create: create, lease: lease ?? .seconds(30), logger: logger) {
        try await body($0)
    }
}
