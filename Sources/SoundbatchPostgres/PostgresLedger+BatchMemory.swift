import Foundation
import PostgresNIO
import SoundbatchCore

extension PostgresLedger {
    public func settings(ofBatch batchID: Int64) async throws -> BatchSettings? {
        try await rows("SELECT settings FROM batches WHERE id = \(batchID)").first?
            .decode(String?.self).flatMap(BatchSettings.init(json:))
    }

    public func recordSettings(_ settings: BatchSettings, ofBatch batchID: Int64) async throws {
        try await rows("UPDATE batches SET settings = \(try settings.json()) WHERE id = \(batchID)")
    }

    public func hasTasks(batchID: Int64) async throws -> Bool {
        try await !rows(
            """
            SELECT 1 FROM jobs WHERE batch_id = \(batchID)
                AND (task_id IS NOT NULL OR request_in_doubt = 1 OR state = \(JobState.submitting.rawValue))
            LIMIT 1
            """
        ).isEmpty
    }
}
