import Foundation
import GRDB
import Testing
@testable import SoundbatchCore

@Suite struct LedgerTests {
    let folder = try! TemporaryFolder()

    @Test func aNewLedgerIsPrivateAndInWALMode() throws {
        let path = folder.file("new.sqlite")
        let ledger = try Ledger(path: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try ledger.database.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        #expect(try ledger.database.read { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)  // FULL
        #expect(try ledger.database.read { try Ledger.migrator.appliedIdentifiers($0) } == ["v1"])
    }

    @Test func reopeningAnExistingLedgerKeepsItsJobs() throws {
        let path = folder.file("l.sqlite")
        _ = try Ledger(path: path).ingest(CSVReader(path: folder.write("a.csv", "prompt\nhi\n")), batch: "a", skipInvalid: false)
        let reopened = try Ledger(path: path)
        #expect(try reopened.status().map(\.jobs) == [1])
    }

    @Test func aLedgerFromTheFutureIsRefusedAndLeftAlone() throws {
        let path = folder.file("future.sqlite")
        _ = try Ledger(path: path)
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v999')")
        }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect {
            _ = try Ledger(path: path)
        } throws: { error in
            "\(error)".contains("newer soundbatch")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func unusablePathsGiveClearErrors() throws {
        #expect(throws: LedgerError.self) { try Ledger(path: folder.file("no/such/dir/l.sqlite")) }
        #expect { try Ledger(path: folder.path) } throws: { "\($0)".contains("directory") }
        let garbage = try folder.write("garbage.sqlite", String(repeating: "not a database ", count: 100))
        #expect(throws: LedgerError.self) { try Ledger(path: garbage) }
    }

    @Test func ledgerPathComesFromOptionThenEnvironmentThenDefault() {
        #expect(Ledger.resolvePath(option: "x.sqlite", environment: ["SOUNDBATCH_LEDGER": "y.sqlite"]) == "x.sqlite")
        #expect(Ledger.resolvePath(option: nil, environment: ["SOUNDBATCH_LEDGER": "y.sqlite"]) == "y.sqlite")
        #expect(Ledger.resolvePath(option: nil, environment: [:]) == "soundbatch.sqlite")
    }
}
