import Foundation
import SoundbatchCore

extension SQLiteLedger {
    /// Takes the ledger for this process alone, for as long as the returned lock lives.
    /// Only one process may send a ledger's jobs: a second one would take the first one's
    /// in-flight jobs for interrupted ones. The kernel lets go if the process dies.
    public func lockForSending() throws -> SendingLock {
        let lockPath = path + ".lock"
        var fd: Int32 = -1
        // The holder removes the file when it lets go: a lock taken on a file no longer at
        // the path is no lock at all, so take it again on the one there now.
        while true {
            fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw LedgerError.cannotOpen(path: lockPath, reason: String(cString: strerror(errno)))
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                var holder = [UInt8](repeating: 0, count: 64)
                let count = pread(fd, &holder, 64, 0)
                close(fd)
                let pid = String(decoding: holder.prefix(max(count, 0)), as: UTF8.self).trimmed
                throw LedgerError.busy(path: path, holder: pid.isEmpty ? "another process" : "process \(pid)")
            }
            var held = stat()
            var there = stat()
            if fstat(fd, &held) == 0, stat(lockPath, &there) == 0, held.st_ino == there.st_ino,
                held.st_dev == there.st_dev
            {
                break
            }
            close(fd)
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        return SendingLock(fd: fd, path: lockPath)
    }

    public func withSending<T: Sendable>(batch: String, _ body: (Int64) async throws -> T) async throws -> T {
        let batchID = try await batchID(named: batch)
        let lock = try lockForSending()
        defer { lock.release() }
        return try await body(batchID)
    }

    /// One machine follows its tasks: nothing to share.
    public func withFollowing<T: Sendable>(batch: String, _ body: (Int64) async throws -> T) async throws -> T {
        try await body(try await batchID(named: batch))
    }
}

/// Holds the ledger's sending lock until released or deallocated, then removes its file.
public final class SendingLock: @unchecked Sendable {
    private var fd: Int32
    private let path: String

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    public func release() {
        if fd >= 0 {
            // Unlinked while still held, so that no other process can have locked the file
            // in between; one that opened it before sees the lock go with it and tries again.
            unlink(path)
            close(fd)
            fd = -1
        }
    }

    deinit { release() }
}
