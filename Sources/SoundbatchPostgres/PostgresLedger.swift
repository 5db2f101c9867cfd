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
///   in doubt, and its tasks followed by another runner;
/// - while the server is unreachable, every call waits and tries again (up to
///   `outageLimit`): no request leaves without its job marked, and an answer that came
///   meanwhile is held by its caller until it is recorded.
///
/// Errors leave as `LedgerError`, with the server's own words, never the password. The
/// rules themselves are the core's (`LedgerBackend`).
public final class PostgresLedger: LedgerBackend {
    let client: PostgresClient
    public let url: DatabaseURL
    public var location: String { url.description }
    public var isShared: Bool { true }
    public var dialect: SQLDialect { .postgres }
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

    /// The runner this process is while it sends or follows (`withSending`).
    public var runnerID: Int64? { runner.withLock { $0 } }

    // Every access goes through these: they wait out an unreachable server and turn what
    // postgres-nio throws into LedgerError.

    public func rows(_ statement: SQL) async throws -> [LedgerRow] {
        LedgerRow.of(try await query(statement.postgres))
    }

    public func transaction<T: Sendable>(
        _ body: @escaping @Sendable (any SQLRunner) async throws -> T
    ) async throws -> T {
        try await transaction(once: false) { connection in
            try await body(PostgresStatements(connection: connection, logger: self.logger))
        }
    }

    /// Hands the rows on as they arrive, never all at once; a try is never given up for
    /// being slow, a million jobs may take a while.
    public func forEachRow(_ statement: SQL, _ body: (LedgerRow) throws -> Void) async throws {
        let rows = try await patiently(nil) { try await self.client.query(statement.postgres, logger: self.logger) }
        var columns: ResultColumns?
        for try await row in rows {
            let names = columns ?? ResultColumns(row.map(\.columnName))
            columns = names
            try body(LedgerRow(columns: names, values: row.map(LedgerValue.init)))
        }
    }

    /// Runs one statement of the server's own outside a transaction and returns its rows.
    @discardableResult
    func query(_ query: PostgresQuery, patience: Duration? = PostgresLedger.patience) async throws -> [PostgresRow] {
        try await patiently(patience) { try await self.client.query(query, logger: self.logger).collect() }
    }

    /// `once`: not tried again when the server goes away (a feed, whose rows are read once).
    @discardableResult
    func transaction<T: Sendable>(
        once: Bool, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let attempt: @Sendable () async throws -> T = {
            try await self.client.withConnection { connection in
                try await connection.withTransaction(logger: self.logger) { try await body($0) }
            }
        }
        guard once else { return try await patiently(Self.patience, attempt) }
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
    /// A try that takes longer than `patience` is given up (cancelled, not waited for) and
    /// made again: the pool waits, silently, for a server that is away, and a connection cut
    /// in the middle of a transaction can leave a call hanging. A try given up may still
    /// have been committed, so a call made this way must bear being made twice: the state
    /// changes do (the same answer twice changes nothing; `markSubmitting` twice refuses the
    /// second, and the job, never sent, is held in doubt when its runner stops), an
    /// attempt's row may be written twice, and a copy's rows refuse to be (and the copy is
    /// removed, for running again).
    private func patiently<T: Sendable>(
        _ patience: Duration?, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let clock = ContinuousClock()
        let start = clock.now
        var pause: Duration = .milliseconds(200)
        while true {
            let why: String
            do {
                let result = if let patience { try await Self.within(patience, body) } else { try await body() }
                if unreachableSince.withLock({ $0.take() }) != nil {
                    logger.notice("the ledger's database at \(location) answers again; carrying on")
                }
                return result
            } catch let late as NoAnswerInTime {
                why = "no answer for \(Int(late.limit.seconds)) seconds"
            } catch {
                try Self.throwUnlessUnreachable(error)
                why = Self.reason(error)
            }
            tellUnreachable(why)
            if start.duration(to: clock.now) > outageLimit { throw gaveUp(why) }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(2))
        }
    }

    /// `body`'s result; `NoAnswerInTime` when it has not come within `limit` (`body` is
    /// then cancelled, and not waited for: a connection cut mid-transaction never answers).
    private static func within<T: Sendable>(
        _ limit: Duration, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await firstOf(
            body,
            {
                try await Task.sleep(for: limit)
                throw NoAnswerInTime(limit: limit)
            }, waitingForTheOther: false)
    }

    /// How long one try may take before the server counts as away.
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
        if let error = error as? PostgresTransactionError {
            return reason(error.closureError ?? error.beginError ?? error.commitError ?? error.rollbackError ?? error)
        }
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

/// The statements of one transaction, on its connection.
struct PostgresStatements: SQLRunner {
    let connection: PostgresConnection
    let logger: Logger

    func rows(_ statement: SQL) async throws -> [LedgerRow] {
        LedgerRow.of(try await connection.query(statement.postgres, logger: logger).collect())
    }
}

extension SQL {
    /// The statement as PostgreSQL reads it: `$n` for each value, and a null's type said,
    /// where nothing else in the statement may tell it.
    var postgres: PostgresQuery {
        let (text, values) = rendered { number, value in
            switch value {
            case .integer(nil): "$\(number)::bigint"
            case .real(nil): "$\(number)::float8"
            case .text(nil): "$\(number)::text"
            case .bytes(nil): "$\(number)::bytea"
            default: "$\(number)"
            }
        }
        var binds = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case let .integer(number?): binds.append(number)
            case let .real(number?): binds.append(number)
            case let .text(text?): binds.append(text)
            case let .bytes(bytes?): binds.append(ByteBuffer(bytes: bytes))
            case .integer(nil), .real(nil), .text(nil), .bytes(nil), .null: binds.appendNull()
            }
        }
        return PostgresQuery(unsafeSQL: text, binds: binds)
    }
}

extension LedgerRow {
    /// A result's rows, read by name.
    static func of(_ rows: [PostgresRow]) -> [LedgerRow] {
        guard let first = rows.first else { return [] }
        let columns = ResultColumns(first.map(\.columnName))
        return rows.map { LedgerRow(columns: columns, values: $0.map(LedgerValue.init)) }
    }
}

extension LedgerValue {
    /// A PostgreSQL cell as the ledger holds it: integers, reals and text, as on SQLite
    /// (flags are integers there; a boolean here is one too).
    init(_ cell: PostgresCell) {
        guard cell.bytes != nil else {
            self = .null
            return
        }
        switch cell.dataType {
        case .int2, .int4, .int8: self = (try? cell.decode(Int64.self)).map { .integer($0) } ?? .null
        case .float4, .float8, .numeric: self = (try? cell.decode(Double.self)).map { .real($0) } ?? .null
        case .bool: self = (try? cell.decode(Bool.self)).map { .integer($0 ? 1 : 0) } ?? .null
        case .bytea: self = cell.bytes.map { .bytes(Array($0.readableBytesView)) } ?? .null
        default: self = (try? cell.decode(String.self)).map { .text($0) } ?? .null
        }
    }
}

/// A try that did not end within its time.
private struct NoAnswerInTime: Error {
    var limit: Duration
}
