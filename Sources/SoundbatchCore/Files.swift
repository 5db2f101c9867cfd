import Crypto
import Foundation

/// A file written unnamed in its destination's folder, named once whole and renamed into
/// place: a reader never sees half a file, and a failed write, or a process killed (even
/// with kill -9), leaves nothing behind. Where the file system cannot make an unnamed file
/// (Linux's O_TMPFILE), it is written under a hidden temporary name, which a kill leaves.
/// Used for downloaded audio and for reports written with --output.
public final class AtomicFile {
    public let path: String
    /// Where the bytes go until `commit`.
    public let descriptor: Int32
    private let temporary: String
    /// The file has no name until `commit` links it as `temporary`.
    private let unnamed: Bool
    private var open = true

    /// Glibc's O_TMPFILE (`__O_TMPFILE | O_DIRECTORY`), which Swift does not import.
    private static let unnamedFile: Int32 = 0o20000000 | O_DIRECTORY

    public init(path: String, mode: mode_t = 0o644) throws(FileError) {
        self.path = path
        let name = (path as NSString).lastPathComponent
        let parent = (path as NSString).deletingLastPathComponent
        let folder = parent.isEmpty ? "." : parent
        temporary = (folder as NSString).appendingPathComponent(".\(name).\(UUID().uuidString.prefix(8)).part")
        let file = Foundation.open(folder, Self.unnamedFile | O_WRONLY | O_CLOEXEC, mode)
        unnamed = file >= 0
        descriptor = unnamed ? file : Foundation.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw FileError(path: path, errno: errno) }
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
        var offset = 0
        while offset < bytes.count {
            let written = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, errno: errno)
            }
            offset += written
        }
    }

    /// Puts the file in place, on disk first when `sync`.
    public func commit(sync: Bool) throws(FileError) {
        guard open else { return }
        open = false
        // What failed first, on disk or in naming the unnamed file.
        var failure: Int32?
        if sync, fsync(descriptor) != 0 {
            failure = errno
        } else if unnamed, linkat(AT_FDCWD, "/proc/self/fd/\(descriptor)", AT_FDCWD, temporary, AT_SYMLINK_FOLLOW) != 0
        {
            failure = errno
        }
        close(descriptor)
        if let failure {
            unlink(temporary)
            throw FileError(path: path, errno: failure)
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw FileError(path: path, errno: code)
        }
    }

    /// Leaves the destination as it was.
    public func abandon() {
        guard open else { return }
        open = false
        close(descriptor)
        if !unnamed { unlink(temporary) }
    }

    deinit { abandon() }
}

/// Makes a folder and the folders it is in, as `mkdir -p` does, and checks that files can
/// be written in it: the folder that could not be made, and the system's reason, when not.
public func makeWritableFolder(_ path: String) throws(FileError) {
    var made = ""
    for part in path.split(separator: "/", omittingEmptySubsequences: true) {
        made += "/" + part
        if mkdir(made, 0o755) != 0, errno != EEXIST { throw FileError(path: made, errno: errno) }
    }
    guard access(path, W_OK | X_OK) == 0 else { throw FileError(path: path, errno: errno) }
}

/// A file that could not be read or written: its path and the system's reason.
public struct FileError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var reading: Bool

    init(path: String, reason: String, reading: Bool) {
        self.path = path
        self.reason = reason
        self.reading = reading
    }

    init(path: String, errno code: Int32, reading: Bool = false) {
        self.path = path
        reason = String(cString: strerror(code))
        self.reading = reading
    }

    public var description: String { "cannot \(reading ? "read" : "write") \(path): \(reason)" }
}

extension SHA256.Digest {
    /// The digest as 64 lowercase hex digits, as the ledger keeps it.
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}
