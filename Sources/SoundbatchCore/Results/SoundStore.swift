import Crypto
import Foundation

/// Where a team's sounds are kept, each once, by the SHA-256 of its bytes: on PostgreSQL,
/// the ledger itself (`LedgerStore.soundStore`); an S3-compatible bucket could be another,
/// for libraries that outgrow their database (put first, then the ledger records the take).
public protocol SoundStore: Sendable {
    func has(sha256: String) async throws -> Bool
    /// Hands the sound's bytes to `write` in order, a chunk at a time; false when it is not kept.
    func get(sha256: String, _ write: ([UInt8]) throws -> Void) async throws -> Bool
    /// Keeps the file's bytes under their SHA-256, `sha256` (refused when they are not).
    func put(file path: String, sha256: String, size: Int) async throws
}

/// A saved take's sound: where it is on this machine (nil when this machine has no file of
/// it), and the bytes' SHA-256 and size, by which a store keeps it.
public struct SavedSound: Sendable, Equatable {
    public var jobID: Int64
    public var take: Int
    public var path: String?
    /// Where the machine that saved it first did: its name's extension is the sound's.
    public var savedAs: String?
    public var sha256: String?
    public var size: Int?
    /// The ledger keeps it (on PostgreSQL).
    public var kept = false

    /// Its file on this machine, when it is there (as it is now: a check finds it cut short).
    var pathHere: String? { path.flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil } }
}

/// A sound that is neither on this machine nor in the ledger's store.
public struct SoundNotHere: Error, CustomStringConvertible {
    public var path: String?
    public var shared: Bool

    public var description: String {
        let whereSaved = path.map { "its file \($0) is not on this machine" } ?? "this machine has no file of it"
        return shared
            ? "\(whereSaved), and the ledger does not keep it (saved before the ledger kept sounds): "
                + "run `soundbatch track --download DIR` on the machine that saved it"
            : "\(whereSaved): put it back there, or fetch it again with `soundbatch track --download DIR`"
    }
}

/// Sounds as files on this machine, for the readers of sounds (the review, `export`,
/// `check`): a take's own file when it is here, else a copy of the store's, written chunk by
/// chunk into a folder of this value's own, removed when `with` ends.
public final class SoundFiles: Sendable {
    let store: (any SoundStore)?
    let folder: String
    /// A copy stays for the scope (the review plays a sound often); else it goes once used.
    let keepsCopies: Bool

    private init(store: (any SoundStore)?, folder: String, keepsCopies: Bool) {
        self.store = store
        self.folder = folder
        self.keepsCopies = keepsCopies
    }

    public static func with<T>(
        store: (any SoundStore)?, keepsCopies: Bool = false, _ body: (SoundFiles) async throws -> T
    ) async throws -> T {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "soundbatch-sounds-\(getpid())-\(UUID().uuidString.prefix(8))"
        ).path
        let files = SoundFiles(store: store, folder: folder, keepsCopies: keepsCopies)
        let removeCopies = { _ = try? FileManager.default.removeItem(atPath: folder) }
        return try await withCleanUp(removeCopies) { try await body(files) }
    }

    /// Runs `body` with the sound as a file on this machine; throws `SoundNotHere` when it is
    /// neither here nor in the store.
    public func withFile<T>(_ sound: SavedSound, _ body: (String) async throws -> T) async throws -> T {
        if let path = sound.pathHere { return try await body(path) }
        let named = sound.path ?? sound.savedAs
        guard let store, let sha256 = sound.sha256 else { throw SoundNotHere(path: named, shared: store != nil) }
        let ext = named.map { ($0 as NSString).pathExtension } ?? ""
        // A copy used once has a name of its own: two takes of one sound exported at once
        // must not remove each other's.
        let stem = keepsCopies ? sha256 : "\(sha256)-\(UUID().uuidString.prefix(8))"
        let copy = (folder as NSString).appendingPathComponent(ext.isEmpty ? stem : "\(stem).\(ext)")
        if !FileManager.default.fileExists(atPath: copy) {
            // A copy for this command alone, gone when it ends: not worth a wait for the disk.
            guard try await Self.restore(sha256, from: store, to: copy, sync: false) else {
                throw SoundNotHere(path: named, shared: true)
            }
        }
        defer { if !keepsCopies { unlink(copy) } }
        return try await body(copy)
    }

    /// Writes a stored sound to `path` (atomically, its bytes checked against their
    /// SHA-256, on disk before it is named when `sync`); false when the store does not keep it.
    static func restore(
        _ sha256: String, from store: any SoundStore, to path: String, sync: Bool = true
    ) async throws -> Bool {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let file = try AtomicFile(path: path)
        var hasher = SHA256()
        do {
            let kept = try await store.get(sha256: sha256) { bytes in
                hasher.update(data: bytes)
                try bytes.withUnsafeBytes { try file.write($0) }
            }
            guard kept else {
                file.abandon()
                return false
            }
            guard hasher.finalize().hex == sha256 else {
                throw LedgerError.failed(reason: "the ledger's sound \(sha256) is not what its SHA-256 says")
            }
            try file.commit(sync: sync)
        } catch {
            file.abandon()
            throw error
        }
        return true
    }
}
