import Foundation
import GRDB
import SoundbatchCore

extension SQLiteLedger {
    public func settings(ofBatch batchID: Int64) async throws -> BatchSettings? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT settings FROM batches WHERE id = ?", arguments: [batchID])
                .flatMap(Self.decodeSettings)
        }
    }

    public func recordSettings(_ settings: BatchSettings, ofBatch batchID: Int64) async throws {
        let json = try Self.encodeSettings(settings)
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

    static func encodeSettings(_ settings: BatchSettings) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(settings), as: UTF8.self)
    }

    /// Settings a ledger holds; ones it cannot read (written by hand, say) count as none.
    static func decodeSettings(_ json: String) -> BatchSettings? {
        try? JSONDecoder().decode(BatchSettings.self, from: Data(json.utf8))
    }
}
