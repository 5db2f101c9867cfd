import Logging
import NIOSSL
import PostgresNIO
import SoundbatchCore

/// A PostgreSQL ledger's database, open for as long as `body` runs: a pool of connections,
/// closed when `body` returns or throws.
///
/// One connection is made first, alone: the pool waits for a server that is not there, and
/// keeps its reasons to itself, while a wrong address, password or database name should
/// end the command at once, saying which.
public func withPostgres<T: Sendable>(
    _ url: DatabaseURL, logger: Logger, _ body: (PostgresClient) async throws -> T
) async throws -> T {
    let tls: TLSConfiguration?
    switch url.tls {
    case .none: tls = nil
    case .encrypted:
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none  // as libpq's sslmode=require
        tls = configuration
    case .verified: tls = .makeClientConfiguration()
    }
    var probe = PostgresConnection.Configuration(
        host: url.host, port: url.port, username: url.user, password: url.password, database: url.database,
        tls: try tls.map { .require(try NIOSSLContext(configuration: $0)) } ?? .disable)
    probe.options.connectTimeout = .seconds(10)
    do {
        try await PostgresConnection.connect(configuration: probe, id: 0, logger: logger).close()
    } catch {
        throw LedgerError.cannotOpen(path: url.description, reason: PostgresLedger.reason(error))
    }

    var poolLogger = logger
    poolLogger.logLevel = .critical  // its connection failures are ours to tell, in our words
    let client = PostgresClient(
        configuration: .init(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database,
            tls: tls.map { .require($0) } ?? .disable),
        backgroundLogger: poolLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}
