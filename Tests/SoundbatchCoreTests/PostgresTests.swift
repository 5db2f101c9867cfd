import Foundation
import GRDB
import Logging
import PostgresNIO
import Testing

@testable import SoundbatchCore
@testable import SoundbatchPostgres
@testable import SoundbatchSQLite

/// The PostgreSQL server the tests use: `$SOUNDBATCH_TEST_POSTGRES` (as
/// `scripts/with-postgres.sh` sets it), else a private cluster that script starts for this
/// test process and stops when it ends. Never skipped: without PostgreSQL these tests fail,
/// saying how to install it.
actor TestPostgres {
    static let shared = TestPostgres()
    /// The server's URL, and the script serving it with the pipe to its standard input, held
    /// open for the life of this process: the cluster stops when it closes.
    private var server: (url: String, process: Process?, input: Pipe?)?

    /// A new, empty database on the server, for one test.
    func newDatabase() async throws -> DatabaseURL {
        let admin = try DatabaseURL(try serverURL(), environment: [:])
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await withPostgres(admin, logger: quietLogger()) { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        }
        var url = admin
        url.database = name
        return url
    }

    private func serverURL() throws -> String {
        if let server { return server.url }
        if let given = ProcessInfo.processInfo.environment["SOUNDBATCH_TEST_POSTGRES"], !given.isEmpty {
            server = (given, nil, nil)
            return given
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/with-postgres.sh").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, "--serve"]
        let output = Pipe()
        let input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).trimmed
        guard line.hasPrefix("postgres://") else {
            throw LedgerError.cannotOpen(
                path: "PostgreSQL for the tests",
                reason: "scripts/with-postgres.sh could not start a cluster (is postgresql installed?)")
        }
        server = (line, process, input)
        return line
    }
}

func quietLogger() -> Logger {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}

@Suite struct DatabaseURLTests {
    @Test func aURLIsReadAndItsPasswordNeverShown() throws {
        let url = try DatabaseURL(
            "postgres://sound:s%40cret@db.example:6543/soundbatch?sslmode=require", environment: [:])
        #expect(url.user == "sound" && url.password == "s@cret" && url.host == "db.example" && url.port == 6543)
        #expect(url.database == "soundbatch" && url.tls == .encrypted)
        #expect(url.description == "postgres://sound:***@db.example:6543/soundbatch?sslmode=require")
        #expect(!url.description.contains("cret"))
        let plain = try DatabaseURL("postgresql://sound@db/soundbatch", environment: [:])
        #expect(plain.port == 5432 && plain.password == nil && plain.tls == .none)
        #expect(DatabaseURL.isDatabaseURL("POSTGRES://x@y/z") && !DatabaseURL.isDatabaseURL("ledger.sqlite"))
    }

    @Test func aPasswordComesFromPGPASSWORDOrPgpass() throws {
        let folder = try TemporaryFolder()
        let pass = try folder.write("pgpass", "# comment\nother:*:*:*:no\ndb:5432:soundbatch:sound:from\\:file\n")
        let fromFile = try DatabaseURL("postgres://sound@db/soundbatch", environment: [:], passFile: pass)
        #expect(fromFile.password == "from:file")
        let fromEnvironment = try DatabaseURL(
            "postgres://sound@db/soundbatch", environment: ["PGPASSWORD": "env"], passFile: pass)
        #expect(fromEnvironment.password == "env")
    }

    @Test func aBrokenURLSaysWhatIsMissingWithoutItsPassword() {
        for (text, expected) in [
            ("postgres://u:secret@/db", "names no host"), ("postgres://u:secret@host", "names no database"),
            ("postgres://u:secret@host/db?sslmode=sometimes", "sslmode=sometimes")
        ] {
            #expect {
                try DatabaseURL(text, environment: [:])
            } throws: { error in
                "\(error)".contains(expected) && !"\(error)".contains("secret") && "\(error)".contains("***")
            }
        }
    }

    @Test func aServerThatIsNotThereIsSaidAtOnceWithoutThePassword() throws {
        let folder = try TemporaryFolder()
        let result = try soundbatch(["status", "--ledger", "postgres://u:secret@127.0.0.1:1/x"], in: folder.path)
        #expect(result.status == 74 && result.stderr.contains("connection refused"), "\(result.stderr)")
        #expect(result.stderr.contains("postgres://u:***@127.0.0.1:1/x") && !result.stderr.contains("secret"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)  // no file made
    }
}

/// The schema on a real PostgreSQL server.
@Suite struct PostgresSchemaTests {
    func columns(_ url: DatabaseURL) async throws -> [String: Set<String>] {
        try await withPostgres(url, logger: quietLogger()) { client in
            var tables: [String: Set<String>] = [:]
            let rows = try await client.query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public'"
            )
            for try await (table, column) in rows.decode((String, String).self) {
                tables[table, default: []].insert(column)
            }
            return tables
        }
    }

    @Test func theTablesAndColumnsAreTheSQLiteLedgers() async throws {
        let url = try await TestPostgres.shared.newDatabase()
        try await withPostgres(url, logger: quietLogger()) { client in
            try await PostgresSchema.migrate(client, location: url.description, logger: quietLogger())
        }
        let postgres = try await columns(url)
        let folder = try TemporaryFolder()
        let sqlite = try SQLiteLedger(path: folder.file("l.sqlite"))
        for table in ["batches", "ingests", "jobs", "attempts", "takes"] {
            let names = try await sqlite.database.read { db in
                Set(try Row.fetchAll(db, sql: "PRAGMA table_info(\(table))").map { $0["name"] as String })
            }
            // What runners sharing the ledger need besides: the runner holding each job.
            let shared: Set<String> = table == "jobs" ? ["runner_id"] : []
            #expect(postgres[table] == names.union(shared), "\(table)")
        }
        #expect(postgres["soundbatch_schema"] == ["version"])
        #expect(postgres["runners"] != nil && postgres["key_budgets"] != nil)
        #expect(Set(postgres.keys).subtracting(["runners", "key_budgets", "soundbatch_schema"]).count == 5)
    }

    @Test func runnersStartingTogetherMigrateOnceAndALaterOneChangesNothing() async throws {
        let url = try await TestPostgres.shared.newDatabase()
        try await withPostgres(url, logger: quietLogger()) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await PostgresSchema.migrate(client, location: url.description, logger: quietLogger())
                    }
                }
                try await group.waitForAll()
            }
            try await PostgresSchema.migrate(client, location: url.description, logger: quietLogger())
            let versions = try await client.query("SELECT version FROM soundbatch_schema").decode(Int.self)
            var all: [Int] = []
            for try await version in versions { all.append(version) }
            #expect(all == [PostgresSchema.version])
        }
    }

    @Test func aDatabaseFromANewerSoundbatchIsRefusedUntouched() async throws {
        let url = try await TestPostgres.shared.newDatabase()
        try await withPostgres(url, logger: quietLogger()) { client in
            try await PostgresSchema.migrate(client, location: url.description, logger: quietLogger())
            try await client.query("UPDATE soundbatch_schema SET version = 99")
            try await client.query("CREATE TABLE from_the_future (x INTEGER)")
        }
        let before = try await columns(url)
        await #expect {
            try await withPostgres(url, logger: quietLogger()) { client in
                try await PostgresSchema.migrate(client, location: url.description, logger: quietLogger())
            }
        } throws: { error in
            guard case .fromTheFuture? = error as? LedgerError else { return false }
            return true
        }
        #expect(try await columns(url) == before)
    }
}
