import Crypto
import Foundation

// Where each take's sound is, written once over `LedgerBackend`: the file of the machine
// that saved it (`download_path`, `download_machine`), each other machine's own copy
// (`sound_copies`), and, on a shared ledger, the sound itself (`sounds`, `sound_chunks`).
// A SQLite ledger and its files are on one machine: it keeps no sound.
extension LedgerBackend {
    /// Bytes in a chunk of a kept sound: a 1-4 s MP3 is one chunk, a minute of WAV twenty.
    static var soundChunkBytes: Int { 512 * 1024 }

    public var soundStore: (any SoundStore)? { isShared ? LedgerSoundStore(ledger: self) : nil }

    /// Records where this machine saved the job's sound, and on a shared ledger keeps the
    /// sound itself (unless `storing` is false: it came from there), in one transaction. A
    /// take another machine saved keeps that machine's path: this one's goes beside it.
    public func recordDownload(
        jobID: Int64, path: String, size: Int, sha256: String, sound: SoundSummary?, storing: Bool,
        now: Date = Date()
    ) async throws {
        let machine = Machine.name
        let stamp = Timestamp.string(now)
        // A sound that came from the ledger was measured when it was first saved.
        let peaks: SQL = storing ? "\(sound?.peaksText)" : "COALESCE(\(sound?.peaksText), peaks)"
        let seconds: SQL = storing ? "\(sound?.seconds)" : "COALESCE(\(sound?.seconds), audio_seconds)"
        try await transaction { db in
            if storing, self.isShared {
                try await Self.keep(file: path, sha256: sha256, size: size, stamp: stamp, in: db)
            }
            guard
                let job = try await db.row("SELECT take, download_path, download_machine FROM jobs WHERE id = \(jobID)")
            else { throw LedgerError.noSuchJob(jobID: jobID) }
            let savedBy: String? = try job["download_machine"]
            if try job["download_path"] as String? == nil || savedBy == nil || savedBy == machine {
                try await db.run(
                    """
                    UPDATE jobs SET download_path = \(path), download_key = \(FileNames.caseKey(path)),
                        download_size = \(size), download_sha256 = \(sha256), download_machine = \(machine),
                        peaks = \(peaks), audio_seconds = \(seconds), updated_at = \(stamp)
                    WHERE id = \(jobID)
                    """)
                return
            }
            try await db.run(
                """
                INSERT INTO sound_copies (job_id, take, machine, path, path_key, size, sha256)
                VALUES (\(jobID), \(try job["take"] as Int), \(machine), \(path), \(FileNames.caseKey(path)), \(size), \(sha256))
                ON CONFLICT (job_id, take, machine) DO UPDATE
                SET path = excluded.path, path_key = excluded.path_key, size = excluded.size, sha256 = excluded.sha256
                """)
        }
    }

    public func isPathTaken(_ path: String, byOtherThan jobID: Int64) async throws -> Bool {
        let key = FileNames.caseKey(path)
        let machine = Machine.name
        return try await row(
            """
            SELECT 1 AS taken FROM jobs
            WHERE download_key = \(key) AND id <> \(jobID) AND (download_machine IS NULL OR download_machine = \(machine))
            UNION ALL
            SELECT 1 FROM sound_copies WHERE machine = \(machine) AND path_key = \(key) AND job_id <> \(jobID)
            LIMIT 1
            """) != nil
    }

    /// The batch's saved sounds, every take of every job: where each is on this machine.
    public func savedSounds(batchID: Int64) async throws -> [SavedSound] {
        try await scan(
            """
            SELECT j.id AS job_id, j.take, \(LedgerSQL.pathHere("j", jobID: "j.id")) AS path, j.download_path,
                   j.download_sha256, j.download_size, \(kept("j")) AS kept
            FROM jobs j WHERE j.batch_id = \(batchID) AND j.download_path IS NOT NULL
            UNION ALL
            SELECT t.job_id, t.take, \(LedgerSQL.pathHere("t", jobID: "t.job_id")), t.download_path, t.download_sha256,
                   t.download_size, \(kept("t"))
            FROM takes t JOIN jobs o ON o.id = t.job_id
            WHERE o.batch_id = \(batchID) AND t.download_path IS NOT NULL
            """
        ).map(SavedSound.init(row:))
    }

    /// Whether the ledger keeps the sound of take `take` (an alias of `jobs` or `takes`).
    func kept(_ take: String) -> SQL {
        isShared ? "EXISTS (SELECT 1 FROM sounds kept WHERE kept.sha256 = \(raw: take).download_sha256)" : "0"
    }

    /// Keeps a file's bytes under their SHA-256, once, in the transaction under way: nothing
    /// when they are kept already; the bytes checked against `sha256` as they are read.
    static func keep(file path: String, sha256: String, size: Int, stamp: String, in db: any SQLRunner) async throws {
        guard
            try await db.row(
                """
                INSERT INTO sounds (sha256, size, stored_at) VALUES (\(sha256), \(size), \(stamp))
                ON CONFLICT (sha256) DO NOTHING RETURNING sha256
                """) != nil
        else { return }
        guard let file = FileHandle(forReadingAtPath: path) else {
            throw FileError(path: path, errno: errno, reading: true)
        }
        defer { try? file.close() }
        var hasher = SHA256()
        var seq = 0
        while let chunk = try file.read(upToCount: soundChunkBytes), !chunk.isEmpty {
            hasher.update(data: chunk)
            try await db.run(
                "INSERT INTO sound_chunks (sha256, seq, data) VALUES (\(sha256), \(seq), \([UInt8](chunk)))")
            seq += 1
        }
        guard hasher.finalize().hex == sha256 else {
            throw FileError(path: path, reason: "it changed while it was being kept in the ledger", reading: true)
        }
    }
}

/// The ledger as the team's store of sounds.
struct LedgerSoundStore<Backend: LedgerBackend>: SoundStore {
    let ledger: Backend

    func has(sha256: String) async throws -> Bool {
        try await ledger.row("SELECT 1 AS kept FROM sounds WHERE sha256 = \(sha256)") != nil
    }

    func get(sha256: String, _ write: ([UInt8]) throws -> Void) async throws -> Bool {
        guard try await has(sha256: sha256) else { return false }
        try await ledger.forEachRow("SELECT data FROM sound_chunks WHERE sha256 = \(sha256) ORDER BY seq") { row in
            try write(try row["data"])
        }
        return true
    }

    func put(file path: String, sha256: String, size: Int) async throws {
        let stamp = Timestamp.string(Date())
        try await ledger.transaction { db in
            try await Backend.keep(file: path, sha256: sha256, size: size, stamp: stamp, in: db)
        }
    }
}

extension SavedSound {
    init(row: LedgerRow) throws {
        self.init(
            jobID: try row["job_id"], take: try row["take"], path: try row["path"], savedAs: try row["download_path"],
            sha256: try row["download_sha256"], size: try row["download_size"],
            kept: try row["kept"])
    }
}
