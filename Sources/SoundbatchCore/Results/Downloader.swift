import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import Synchronization

public struct DownloadSettings: Sendable {
    public var directory: String
    public var maxBytes = 100 * 1_000_000
    public var concurrency = 4
    public var timeout: Duration = .seconds(300)

    /// The folder, as an absolute path.
    public init(directory: String) { self.directory = URL(fileURLWithPath: directory).standardizedFileURL.path }
}

public enum DownloadError: Error, CustomStringConvertible {
    case tooLarge(limit: Int)
    case http(status: Int)
    case transport(String)
    case file(String)

    public var description: String {
        switch self {
        case let .tooLarge(limit): "the audio is larger than --max-download-size (\(limit) bytes)"
        case let .http(status): "the audio server answered HTTP \(status)"
        case let .transport(text): "the download failed: \(text)"
        case let .file(text): "cannot write the audio file: \(text)"
        }
    }
}

/// Fetches completed jobs' audio into one folder: a safe name per job, written to a
/// temporary file and renamed into place, size-capped, its path, size and SHA-256 in the
/// ledger. A file already there and unchanged is not fetched again.
///
/// Audio URLs point at a storage host, not the API: no key is sent, and redirects are
/// followed there (they carry nothing secret).
public final class Downloader: Sendable {
    public let settings: DownloadSettings
    private let ledger: Ledger
    private let http: HTTPClient
    /// Paths (lowercased) of the downloads under way: two at once must not pick the same
    /// name before either is in the ledger.
    private let claimedPaths = Mutex<Set<String>>([])

    public init(ledger: Ledger, settings: DownloadSettings) throws {
        self.ledger = ledger
        self.settings = settings
        var isFolder: ObjCBool = false
        if !FileManager.default.fileExists(atPath: settings.directory, isDirectory: &isFolder) {
            do {
                try FileManager.default.createDirectory(atPath: settings.directory, withIntermediateDirectories: true)
            } catch {
                throw DownloadError.file("cannot create \(settings.directory): \(error.localizedDescription)")
            }
        } else if !isFolder.boolValue {
            throw DownloadError.file("\(settings.directory) is a file, not a folder")
        }
        var configuration = HTTPClient.Configuration(redirectConfiguration: .follow(max: 5, allowCycles: false),
                                                     timeout: .init(connect: .seconds(10)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(settings.concurrency, 1)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async { try? await http.shutdown() }

    public enum Result: Sendable, Equatable {
        case downloaded(path: String, size: Int)
        case alreadyThere(path: String)
    }

    /// Makes sure the job's audio is on disk.
    public func fetch(_ job: AudioJob) async throws -> Result {
        if let path = job.downloadedPath, let size = job.downloadedSize, let sha = job.downloadedSHA256,
           Self.fileMatches(path: path, size: size, sha256: sha) {
            return .alreadyThere(path: path)
        }
        var request = HTTPClientRequest(url: job.audioURL)
        request.method = .GET
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .nanoseconds(Int64(settings.timeout.seconds * 1e9)))
        } catch {
            throw DownloadError.transport(MusicGPTClient.describe(error))
        }
        guard (200..<300).contains(response.status.code) else { throw DownloadError.http(status: Int(response.status.code)) }
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > settings.maxBytes {
            throw DownloadError.tooLarge(limit: settings.maxBytes)
        }
        let ext = FileNames.fileExtension(url: job.audioURL, contentType: response.headers.first(name: "Content-Type"))
        let path = await destination(for: job, extension: ext)
        defer { release(path) }

        // Write to a temporary file in the same folder, then rename: a reader never sees half a file.
        let temporary = (settings.directory as NSString).appendingPathComponent(".\(UUID().uuidString).part")
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DownloadError.file("\(temporary): \(String(cString: strerror(errno)))") }
        var hasher = SHA256()
        var size = 0
        do {
            defer { close(fd) }
            for try await chunk in response.body {
                size += chunk.readableBytes
                if size > settings.maxBytes { throw DownloadError.tooLarge(limit: settings.maxBytes) }
                try chunk.withUnsafeReadableBytes { bytes in
                    hasher.update(bufferPointer: bytes)
                    var offset = 0
                    while offset < bytes.count {
                        let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                        if written < 0 {
                            if errno == EINTR { continue }
                            throw DownloadError.file("\(temporary): \(String(cString: strerror(errno)))")
                        }
                        offset += written
                    }
                }
            }
            guard fsync(fd) == 0 else { throw DownloadError.file("\(temporary): \(String(cString: strerror(errno)))") }
        } catch {
            unlink(temporary)
            if let error = error as? DownloadError { throw error }
            throw DownloadError.transport(MusicGPTClient.describe(error))
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw DownloadError.file("\(path): \(reason)")
        }
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        try await ledger.recordDownload(jobID: job.id, path: path, size: size, sha256: digest)
        return .downloaded(path: path, size: size)
    }

    /// DIR/<name>.<ext>, the name from the row's id (or a slug of its prompt), made safe,
    /// with the job's number added when another job has the name already.
    private func destination(for job: AudioJob, extension ext: String) async -> String {
        if let previous = job.downloadedPath, (previous as NSString).deletingLastPathComponent == settings.directory {
            return previous  // fetching again: keep the name it had
        }
        let base = FileNames.safeName(job.hasIDColumnKey ? job.rowKey : FileNames.slug(job.prompt), jobID: job.id)
        let plain = (settings.directory as NSString).appendingPathComponent("\(base).\(ext)")
        let numbered = (settings.directory as NSString).appendingPathComponent("\(base)-\(job.id).\(ext)")
        // Claim the plain name first, then look in the ledger: a download that finished
        // and let go of its claim is in the ledger by then.
        let claimedPlain = claimedPaths.withLock { $0.insert(plain.lowercased()).inserted }
        if claimedPlain {
            // A ledger that cannot be read here leaves the numbered name, which is always free.
            let taken = (try? await ledger.isPathTaken(plain, byOtherThan: job.id)) ?? true
                || FileManager.default.fileExists(atPath: plain)
            if !taken { return plain }
            release(plain)
        }
        claimedPaths.withLock { _ = $0.insert(numbered.lowercased()) }
        return numbered
    }

    /// Lets go of a name once its download is recorded in the ledger, or has failed.
    private func release(_ path: String) {
        claimedPaths.withLock { _ = $0.remove(path.lowercased()) }
    }

    static func fileMatches(path: String, size: Int, sha256: String) -> Bool {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              (attributes[.size] as? Int) == size,
              let data = FileManager.default.contents(atPath: path) else { return false }
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() == sha256
    }
}
