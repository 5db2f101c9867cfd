import Foundation
import GRDB
import SoundbatchCore

extension SQLiteLedger {
    public func settings(ofBatch batchID: Int64) async throws -> BatchSettings? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT settings FROM batches WHERE id = ?", arguments: [batchID])
                .flatMap(BatchSettings.init(json:))
        }
    }

    public func recordSettings(_ settings: BatchSettings, ofBatch batchID: Int64) async throws {
        let json = try settings.json()
        try await write { db in
            try db.execute(sql: "UPDATE batches SET settings = ? WHERE id = ?", arguments: [json, batchID])
        }
    }

    public func hasTasks(batchID: Int64) async throws -> Bool {
        try await read { db in
            try Bool.fetchOne(
                db,
                sql: """
                    SELECT 1 FROM jobs
                    WHERE batch_id = ? AND (task_id IS NOT NULL OR request_in_doubt OR state = ?) LIMIT 1
                    """, arguments: [batchID, JobState.submitting]) ?? false
        }
    }
}
