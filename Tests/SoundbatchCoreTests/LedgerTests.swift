import Foundation
import GRDB
import Testing
@testable import SoundbatchCore
@testable import SoundbatchSQLite

@Suite struct LedgerTests {
    let folder = try! TemporaryFolder()

    @Test func aNewLedgerIsPrivateAndInWALMode() throws {
        let path = folder.file("new.sqlite")
        let ledger = try SQLiteLedger(path: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try ledger.database.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        #expect(try ledger.database.read { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)  // FULL
        #expect(try ledger.database.read { try Int.fetchOne($0, sql: "PRAGMA page_size") } == 16_384)
        #expect(try ledger.database.read { try SQLiteLedger.migrator.appliedIdentifiers($0) } == ["v1", "v2: find jobs by task_id"])
    }

    @Test func reopeningAnExistingLedgerKeepsItsJobs() throws {
        let path = folder.file("l.sqlite")
        _ = try SQLiteLedger(path: path).ingest(CSVReader(path: folder.write("a.csv", "prompt\nhi\n")), batch: "a", skipInvalid: false)
        let reopened = try SQLiteLedger(path: path)
        #expect(try reopened.status().map(\.jobs) == [1])
    }

    @Test func anOlderLedgerIsUpgradedInPlace() throws {
        let path = folder.file("old.sqlite")
        // A ledger as the first version left it, with a job in it.
        let old = try DatabaseQueue(path: path)
        try SQLiteLedger.migrator.migrate(old, upTo: "v1")
        try old.write { db in
            try db.execute(sql: "INSERT INTO batches (name, created_at) VALUES ('b', 'x')")
            try db.execute(sql: "INSERT INTO ingests (batch_id, source_file, started_at) VALUES (1, 'f', 'x')")
            try db.execute(sql: """
                INSERT INTO jobs (batch_id, row_key, source_line, prompt, state, created_at, updated_at, ingest_id, seen_ingest_id)
                VALUES (1, 'k', 2, 'p', 'pending', 'x', 'x', 1, 1)
                """)
        }
        try old.close()
        let ledger = try SQLiteLedger(path: path)
        #expect(try ledger.database.read { try SQLiteLedger.migrator.appliedIdentifiers($0) }.count == 2)
        #expect(try ledger.database.read { try $0.indexes(on: "jobs").map(\.name) }.contains("jobs_by_task"))
        #expect(try ledger.status().map(\.jobs) == [1])
        #expect(try ledger.database.read { try Int.fetchOne($0, sql: "PRAGMA page_size") } == 4_096)  // kept as it was
    }

    @Test func aLedgerFromTheFutureIsRefusedAndLeftAlone() throws {
        let path = folder.file("future.sqlite")
        _ = try SQLiteLedger(path: path)
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v999')")
        }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect {
            _ = try SQLiteLedger(path: path)
        } throws: { error in
            "\(error)".contains("newer soundbatch")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func unusablePathsGiveClearErrors() throws {
        #expect(throws: LedgerError.self) { try SQLiteLedger(path: folder.file("no/such/dir/l.sqlite")) }
        #expect { try SQLiteLedger(path: folder.path) } throws: { "\($0)".contains("directory") }
        let garbage = try folder.write("garbage.sqlite", String(repeating: "not a database ", count: 100))
        #expect(throws: LedgerError.self) { try SQLiteLedger(path: garbage) }
    }

    @Test func ledgerPathComesFromOptionThenEnvironmentThenDefault() {
        #expect(LedgerLocation.resolve(option: "x.sqlite", environment: ["SOUNDBATCH_LEDGER": "y.sqlite"]) == "x.sqlite")
        #expect(LedgerLocation.resolve(option: nil, environment: ["SOUNDBATCH_LEDGER": "y.sqlite"]) == "y.sqlite")
        #expect(LedgerLocation.resolve(option: nil, environment: [:]) == "soundbatch.sqlite")
    }
}
