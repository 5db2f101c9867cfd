import Logging
import NIOSSL
import PostgresNIO
import SoundbatchCore

/// A PostgreSQL ledger's database, open for as long as `body` runs: a pool of connections,
/// closed when `body` returns or throws.
public func withPostgres<T: Sendable>(
    _ url: DatabaseURL, logger: Logger, _ body: (PostgresClient) async throws -> T
) async throws -> T {
    let tls: PostgresClient.Configuration.TLS
    switch url.tls {
    case .none: tls = .disable
    case .encrypted:
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none  // as libpq's sslmode=require
        tls = .require(configuration)
    case .verified: tls = .require(.makeClientConfiguration())
    }
    let client = PostgresClient(
        configuration: .init(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database,
            tls: tls),
        backgroundLogger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}
