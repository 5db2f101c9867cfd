import Foundation
import SoundbatchAudio

/// A take whose saved sound a check measures.
public struct CheckTarget: Sendable, Equatable {
    public var jobID: Int64
    public var take: Int
    /// Its row, as a person finds it, and as the ledger knows it (takes are numbered within it).
    public var row: String
    public var rowKey: String
    public var sound: SavedSound
    /// The seconds its row asked for, if it said.
    public var askedSeconds: Int?
}

/// What the checks of a check command are held to, and what `checkTargets` takes.
public enum CheckScope: Sendable {
    /// Takes never checked, or checked with other settings, or whose file changed since.
    case due(CheckSettings)
    /// Every saved take.
    case all
}

/// What checks keep and read, written once over `LedgerBackend`.
public protocol CheckLedger: BatchDirectory {
    /// Keeps what a check found of take `take` of a job, its sound's SHA-256 and the settings
    /// it was held to, in place of an earlier check of it; held against the row's other takes
    /// checked already, in one transaction that has the row to itself (`comparedWithRow`):
    /// the take is a duplicate of an earlier one, or a later one is a duplicate of it.
    /// Returns the check as kept.
    @discardableResult
    func recordCheck(
        _ check: TakeCheck, settings: CheckSettings, jobID: Int64, take: Int, sha256: String?, now: Date
    ) async throws -> TakeCheck

    /// The batch's saved takes (current and earlier) that `scope` asks for, row by row, each
    /// row's takes in order.
    func checkTargets(batchID: Int64, _ scope: CheckScope) async throws -> [CheckTarget]

    /// The findings of each batch's (or the one named) latest takes, counted.
    func findingCounts(batch: String?) async throws -> [String: CheckCounts]
}

/// A batch's latest takes checked, and how many of them carry each finding.
public struct CheckCounts: Sendable, Equatable {
    public var checked = 0
    public var findings: [Finding: Int] = [:]

    public init(checked: Int = 0, findings: [Finding: Int] = [:]) {
        self.checked = checked
        self.findings = findings
    }
}

extension LedgerBackend {
    @discardableResult
    public func recordCheck(
        _ check: TakeCheck, settings: CheckSettings, jobID: Int64, take: Int, sha256: String?, now: Date = Date()
    ) async throws -> TakeCheck {
        try await transaction { db in
            // The row's jobs locked: two takes of one row checked at once see each other.
            _ = try await db.rows(
                """
                SELECT o.id FROM jobs o JOIN jobs j ON j.id = \(jobID)
                WHERE o.batch_id = j.batch_id AND o.row_key = j.row_key\(self.dialect.lockingRows)
                """)
            let others = try await db.rows(
                """
                SELECT c.take, c.fingerprint FROM checks c JOIN jobs o ON o.id = c.job_id JOIN jobs j ON j.id = \(jobID)
                WHERE o.batch_id = j.batch_id AND o.row_key = j.row_key AND c.take <> \(take)
                  AND c.fingerprint IS NOT NULL AND c.findings NOT LIKE '%silent%'
                """
            ).map {
                (
                    take: try $0["take"] as Int,
                    fingerprint: SoundMeasurement.fingerprint(fromText: try $0["fingerprint"])
                )
            }
            let (kept, laterCopies) = check.comparedWithRow(take: take, others: others, settings: settings)
            try await db.run(
                Self.keepCheck(kept, settings: settings, jobID: jobID, take: take, sha256: sha256, now: now))
            for copy in try await db.rows(
                """
                SELECT c.id, c.findings FROM checks c JOIN jobs o ON o.id = c.job_id JOIN jobs j ON j.id = \(jobID)
                WHERE o.batch_id = j.batch_id AND o.row_key = j.row_key AND c.take IN (\(list: laterCopies))
                  AND c.duplicate_of IS NULL
                """)
            {
                var findings = Finding.set(fromText: try copy["findings"])
                findings.insert(.duplicate)
                try await db.run(
                    """
                    UPDATE checks SET findings = \(Finding.text(findings)), duplicate_of = \(take)
                    WHERE id = \(try copy["id"] as Int64)
                    """)
            }
            return kept
        }
    }

    /// Keeps a take's check in place of an earlier one.
    private static func keepCheck(
        _ check: TakeCheck, settings: CheckSettings, jobID: Int64, take: Int, sha256: String?, now: Date
    ) -> SQL {
        let m = check.measurement
        return """
            INSERT INTO checks (job_id, take, checked_at, settings, sound_sha256, seconds, loudness_lufs, loudness_range,
                                sample_peak_dbfs, true_peak_dbtp, overs, flat_runs, dc_offset_dbfs, leading_silence,
                                trailing_silence, longest_gap, fingerprint, findings, duplicate_of, problem)
            VALUES (\(jobID), \(take), \(Timestamp.string(now)), \(settings.text), \(sha256), \(m?.seconds),
                    \(m?.integrated), \(m?.loudnessRange), \(m?.samplePeak), \(m?.truePeak), \(m?.overs), \(m?.flatRuns),
                    \(m?.dcOffset), \(m?.leadingSilence), \(m?.trailingSilence), \(m?.longestGap),
                    \(m?.fingerprintText), \(Finding.text(check.findings)), \(check.duplicateOf), \(check.problem))
            ON CONFLICT (job_id, take) DO UPDATE SET
                checked_at = excluded.checked_at, settings = excluded.settings, sound_sha256 = excluded.sound_sha256,
                seconds = excluded.seconds, loudness_lufs = excluded.loudness_lufs,
                loudness_range = excluded.loudness_range, sample_peak_dbfs = excluded.sample_peak_dbfs,
                true_peak_dbtp = excluded.true_peak_dbtp, overs = excluded.overs, flat_runs = excluded.flat_runs,
                dc_offset_dbfs = excluded.dc_offset_dbfs, leading_silence = excluded.leading_silence,
                trailing_silence = excluded.trailing_silence, longest_gap = excluded.longest_gap,
                fingerprint = excluded.fingerprint, findings = excluded.findings,
                duplicate_of = excluded.duplicate_of, problem = excluded.problem
            """
    }

    public func checkTargets(batchID: Int64, _ scope: CheckScope) async throws -> [CheckTarget] {
        let due: SQL
        switch scope {
        case .all: due = "TRUE"
        case let .due(settings):
            due = """
                NOT EXISTS (SELECT 1 FROM checks c WHERE c.job_id = s.job_id AND c.take = s.take
                            AND c.settings = \(settings.text) AND c.sound_sha256 IS NOT DISTINCT FROM s.download_sha256)
                """
        }
        return try await scan(
            """
            SELECT s.*, j.audio_length, \(LedgerSQL.rowNameColumns()) FROM (
                SELECT id AS job_id, take, \(LedgerSQL.pathHere("jobs", jobID: "jobs.id")) AS path, download_path,
                       download_sha256, download_size, \(kept("jobs")) AS kept
                FROM jobs
                WHERE batch_id = \(batchID) AND state = \(JobState.completed) AND download_path IS NOT NULL
                UNION ALL
                SELECT t.job_id, t.take, \(LedgerSQL.pathHere("t", jobID: "t.job_id")), t.download_path, t.download_sha256,
                       t.download_size, \(kept("t"))
                FROM takes t JOIN jobs o ON o.id = t.job_id
                WHERE o.batch_id = \(batchID) AND t.state = \(JobState.completed) AND t.download_path IS NOT NULL
            ) s JOIN jobs j ON j.id = s.job_id
            WHERE \(due)
            ORDER BY j.row_key, s.take
            """
        ).map { row in
            CheckTarget(
                jobID: try row["job_id"], take: try row["take"], row: try row.rowName, rowKey: try row["row_key"],
                sound: try SavedSound(row: row), askedSeconds: try row["audio_length"])
        }
    }

    public func findingCounts(batch: String?) async throws -> [String: CheckCounts] {
        var counts: [String: CheckCounts] = [:]
        for row in try await scan(
            """
            SELECT b.name, c.findings, COUNT(*) AS takes FROM jobs j
            JOIN checks c ON c.job_id = j.id AND c.take = j.take JOIN batches b ON b.id = j.batch_id
            WHERE \(batch.map { "b.name = \($0)" as SQL } ?? "TRUE")
            GROUP BY b.name, c.findings
            """)
        {
            let name: String = try row["name"]
            let takes: Int = try row["takes"]
            counts[name, default: CheckCounts()].checked += takes
            for finding in Finding.set(fromText: try row["findings"]) {
                counts[name, default: CheckCounts()].findings[finding, default: 0] += takes
            }
        }
        return counts
    }
}
