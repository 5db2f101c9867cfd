import Foundation
import Logging
import PostgresNIO
import SoundbatchCore
import Synchronization

/// The ledger on a PostgreSQL server, shared by a team's runners: the same tables as the
/// SQLite ledger's, one queue for everyone, one report.
///
/// How it keeps the seam's promises with several runners at once:
/// - each state change is one transaction, committed (durably, as PostgreSQL commits)
///   before it returns, so a job is `submitting` on the server before its request leaves;
/// - each runner holds a lease (`runners`), renewed while it sends; the jobs it claims carry
///   its id (`jobs.runner_id`), are claimed with `FOR UPDATE SKIP LOCKED`, and are its own
///   until it stops or its lease runs out: only then are its `submitting` jobs held as
///   ambiguous, and its tasks followed by another runner;
/// - while the server is unreachable, every call waits and tries again (up to
///   `outageLimit`): no request leaves without its job marked, and an answer that came
///   meanwhile is held by its caller until it is recorded.
///
/// Errors leave as `LedgerError`, with the server's own words, never the password.
public final class PostgresLedger: LedgerStore {
    let client: PostgresClient
    public let url: DatabaseURL
    public var location: String { url.description }
    public var isShared: Bool { true }
    let logger: Logger
    /// How long a runner's lease lasts unless renewed; renewed every third of it.
    let lease: Duration
    /// How long the server may be unreachable before a call gives up.
    let outageLimit: Duration
    /// This process's runner while it sends (see `withSending`).
    let runner = Mutex<Int64?>(nil)
    /// When the server stopped answering, while it is away: said once per outage.
    private let unreachableSince = Mutex<ContinuousClock.Instant?>(nil)

    init(client: PostgresClient, url: DatabaseURL, logger: Logger, lease: Duration, outageLimit: Duration) {
        self.client = client
        self.url = url
        self.logger = logger
        self.lease = lease
        self.outageLimit = outageLimit
    }

    /// The runner this process is, if it is sending.
    var me: Int64? { runner.withLock { $0 } }

    public func batchID(named name: String) async throws -> Int64 {
        if let id = try await findBatch(named: name) { return id }
        let known = try await rows("SELECT name FROM batches ORDER BY name").map { try $0.decode(String.self) }
        throw LedgerError.noSuchBatch(name, known: known)
    }

    func findBatch(named name: String) async throws -> Int64? {
        try await rows("SELECT id FROM batches WHERE name = \(name)").first?.decode(Int64.self)
    }

    // Every access goes through these: they wait out an unreachable server and turn what
    // postgres-nio throws into LedgerError.

    /// Runs one statement outside a transaction and returns its rows.
    @discardableResult
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await patiently { try await self.client.query(query, logger: self.logger).collect() }
    }

    /// Runs one statement and hands its rows on as they arrive.
    func stream(_ query: PostgresQuery) async throws -> PostgresRowSequence {
        try await patiently { try await self.client.query(query, logger: self.logger) }
    }

    /// Runs `body` in one transaction: all of it is kept, or none.
    /// `once`: not tried again when the server goes away (a feed, whose rows are read once).
    func transaction<T: Sendable>(
        once: Bool = false, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let attempt: @Sendable () async throws -> T = {
            try await self.client.withConnection { connection in
                try await connection.withTransaction(logger: self.logger) { try await body($0) }
            }
        }
        guard once else { return try await patiently(attempt) }
        do {
            return try await attempt()
        } catch {
            try Self.throwUnlessUnreachable(error)
            throw LedgerError.failed(
                reason: "the database at \(location) went away during the feed (\(Self.reason(error))); "
                    + "nothing of it was kept: run it again")
        }
    }

    /// Runs `body`, again and again while the server is unreachable, up to `outageLimit`.
    /// The pool waits, silently, for a server that is away: a call that has not finished
    /// after `patience` is said to be waiting, once per outage.
    private func patiently<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let clock = ContinuousClock()
        let start = clock.now
        var pause: Duration = .milliseconds(200)
        while true {
            do {
                let result = try await withThrowingTaskGroup(of: T?.self) { group in
                    group.addTask { try await body() }
                    group.addTask {
                        try await Task.sleep(for: Self.patience)
                        return nil
                    }
                    defer { group.cancelAll() }
                    while let next = try await group.next() {
                        if let next { return next }
                        self.tellUnreachable("no answer for \(Int(Self.patience.seconds)) seconds")
                        let left = self.outageLimit - start.duration(to: clock.now)
                        group.addTask {
                            try await Task.sleep(for: max(left, .zero))
                            throw self.gaveUp("no answer")
                        }
                    }
                    throw CancellationError()
                }
                if unreachableSince.withLock({ $0.take() }) != nil {
                    logger.notice("the ledger's database at \(location) answers again; carrying on")
                }
                return result
            } catch {
                try Self.throwUnlessUnreachable(error)
                tellUnreachable(Self.reason(error))
                if start.duration(to: clock.now) > outageLimit { throw gaveUp(Self.reason(error)) }
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
    }

    /// How long a call may take before the server counts as away.
    static let patience: Duration = .seconds(10)

    private func tellUnreachable(_ why: String) {
        let first = unreachableSince.withLock { since in
            defer { if since == nil { since = ContinuousClock().now } }
            return since == nil
        }
        if first {
            logger.warning(
                """
                the ledger's database at \(location) is unreachable (\(why)); \
                nothing is sent until it is back, and answers are held until they are recorded
                """)
        }
    }

    private func gaveUp(_ why: String) -> LedgerError {
        .failed(
            reason: "the database at \(location) has been unreachable for \(Int(outageLimit.seconds / 60)) minutes "
                + "(\(why)); run again once it is back: the ledger holds what was done")
    }

    /// Throws `error` unless it says the server is away (restarting, not listening, the
    /// connection cut), which is worth waiting out. The server's errors leave as
    /// LedgerError; the caller's own (a feed's verdict, a job no longer pending) as they are.
    private static func throwUnlessUnreachable(_ error: any Error) throws {
        if let error = error as? PostgresTransactionError {
            if let inner = error.closureError { return try throwUnlessUnreachable(inner) }
            if let inner = error.beginError ?? error.commitError, isUnreachable(inner) { return }
            throw LedgerError.failed(reason: reason(error.beginError ?? error.commitError ?? error))
        }
        if isUnreachable(error) { return }
        if error is PSQLError || error is PostgresDecodingError { throw LedgerError.failed(reason: reason(error)) }
        throw error
    }

    private static func isUnreachable(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return false }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
            return true
        case .server:
            // 08: connection exceptions; 57P01-57P03: shutting down, starting up.
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state)
        default:
            return false
        }
    }

    static func reason(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] { return message }
        if error.code == .connectionError {
            let underlying = "\(error.underlying.map { "\($0)" } ?? "")"
            let what =
                underlying.contains("refused")
                ? "connection refused" : underlying.lowercased().contains("timeout") ? "no answer" : underlying
            return "could not connect (\(what)); is PostgreSQL running there, and is the address right?"
        }
        return "\(error.code)"
    }
}

/// Opens the PostgreSQL ledger at `url` for as long as `body` runs, bringing its schema up
/// to date. Without `create`, a database soundbatch never wrote to is
/// `LedgerError.missing`. `lease` is how long a runner that stops renewing keeps its jobs.
public func withPostgresLedger<T: Sendable>(
    _ url: DatabaseURL, create: Bool, lease: Duration = .seconds(30), outageLimit: Duration = .seconds(15 * 60),
    logger: Logger, _ body: (PostgresLedger) async throws -> T
) async throws -> T {
    try await withPostgres(url, logger: logger) { client in
        if !create, try await !PostgresSchema.exists(client, location: url.description, logger: logger) {
            throw LedgerError.missing(path: url.description)
        }
        try await PostgresSchema.migrate(client, location: url.description, logger: logger)
        return try await body(
            PostgresLedger(client: client, url: url, logger: logger, lease: lease, outageLimit: outageLimit))
    }
}

extension PostgresRow {
    /// The value of the column `name`.
    func get<T: PostgresDecodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        try makeRandomAccess()[name].decode(T.self)
    }
}
