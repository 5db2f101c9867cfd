import Foundation
import SoundbatchCore

extension SQLiteLedger {
    /// Takes the ledger for this process alone, for as long as the returned lock lives.
    /// Only one process may send a ledger's jobs: a second one would take the first one's
    /// in-flight jobs for interrupted ones. The kernel lets go if the process dies.
    public func lockForSending() throws -> SendingLock {
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
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
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        return SendingLock(fd: fd)
    }

    public func claimSending(batch: String) throws -> any SendingClaim {
        try lockForSending()
    }
}

/// Holds the ledger's sending lock until released or deallocated.
public final class SendingLock: SendingClaim, @unchecked Sendable {
    private var fd: Int32

    init(fd: Int32) { self.fd = fd }

    public func release() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
    }

    deinit { release() }
}
