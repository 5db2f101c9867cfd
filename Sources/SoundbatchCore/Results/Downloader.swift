import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import SoundbatchAudio
import Synchronization

public struct DownloadSettings: Sendable {
    public var directory: String
    public var maxBytes = 100 * 1_000_000
    public var concurrency = 4
    public var timeout: Duration = .seconds(300)
    /// What each sound saved is held to as it is measured; nil: saved unmeasured (a
    /// `soundbatch check` measures it later).
    public var checks: CheckSettings? = CheckSettings()

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
        case let .file(text): text
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
    private let ledger: any DownloadLedger
    private let http: HTTPClient
    /// Paths (`FileNames.caseKey`) of the downloads under way: two at once must not pick the same
    /// name before either is in the ledger.
    private let claimedPaths = Mutex<Set<String>>([])

    /// Runs `body` with a downloader into the settings' folder (made if missing), then
    /// closes its connections.
    public static func withDownloader<T>(
        ledger: any DownloadLedger, settings: DownloadSettings,
        _ body: (Downloader) async throws -> T
    ) async throws -> T {
        let downloader = try Downloader(ledger: ledger, settings: settings)
        return try await withCleanUp(downloader.shutdown) { try await body(downloader) }
    }

    init(ledger: any DownloadLedger, settings: DownloadSettings) throws {
        self.ledger = ledger
        self.settings = settings
        var isFolder: ObjCBool = false
        if !FileManager.default.fileExists(atPath: settings.directory, isDirectory: &isFolder) {
            do {
                try FileManager.default.createDirectory(atPath: settings.directory, withIntermediateDirectories: true)
            } catch {
                throw DownloadError.file(
                    "--download \(settings.directory): the folder cannot be made: \(error.localizedDescription)")
            }
        } else if !isFolder.boolValue {
            throw DownloadError.file("--download \(settings.directory) is a file, not a folder")
        }
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .follow(max: 5, allowCycles: false),
            timeout: .init(connect: .seconds(10)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(settings.concurrency, 1)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func shutdown() async { try? await http.shutdown() }

    public enum Result: Sendable, Equatable {
        case downloaded(path: String, size: Int)
        /// Written from the ledger's store: another machine of the team saved it.
        case fromLedger(path: String, size: Int)
        case alreadyThere(path: String)
    }

    /// Makes sure the job's audio is on this machine's disk: from the ledger's store when it
    /// keeps the sound (no request to the service), else from the service.
    public func fetch(_ job: AudioJob) async throws -> Result {
        if let path = job.downloadedPath, let size = job.downloadedSize, let sha = job.downloadedSHA256,
            Self.fileMatches(path: path, size: size, sha256: sha)
        {
            // A sound saved before the ledger kept sounds goes into it now, for the team.
            if let store = ledger.soundStore, try await !store.has(sha256: sha) {
                try await store.put(file: path, sha256: sha, size: size)
            }
            return .alreadyThere(path: path)
        }
        if let restored = try await fromLedger(job) { return restored }
        var request = HTTPClientRequest(url: job.audioURL)
        request.method = .GET
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .nanoseconds(Int64(settings.timeout.seconds * 1e9)))
        } catch {
            throw DownloadError.transport(MusicGPTClient.describe(error))
        }
        guard (200..<300).contains(response.status.code) else {
            throw DownloadError.http(status: Int(response.status.code))
        }
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > settings.maxBytes {
            throw DownloadError.tooLarge(limit: settings.maxBytes)
        }
        let ext = FileNames.fileExtension(url: job.audioURL, contentType: response.headers.first(name: "Content-Type"))
        let path = await destination(for: job, extension: ext)
        defer { release(path) }

        let file: AtomicFile
        do { file = try AtomicFile(path: path) } catch { throw DownloadError.file(error.description) }
        var hasher = SHA256()
        var size = 0
        do {
            for try await chunk in response.body {
                size += chunk.readableBytes
                if size > settings.maxBytes { throw DownloadError.tooLarge(limit: settings.maxBytes) }
                try chunk.withUnsafeReadableBytes { bytes in
                    hasher.update(bufferPointer: bytes)
                    try file.write(bytes)
                }
            }
            try file.commit(sync: true)
        } catch {
            file.abandon()
            switch error {
            case let error as DownloadError: throw error
            case let error as FileError: throw DownloadError.file(error.description)
            default: throw DownloadError.transport(MusicGPTClient.describe(error))
            }
        }
        let digest = hasher.finalize().hex
        let check = self.check(path, of: job)
        // The file is in its place: it goes into the ledger even while the run is being
        // stopped (a task of its own is not cancelled with this one), or it would be left on
        // disk unknown to the ledger (InterruptTests saw it on a loaded machine).
        try await Task { [ledger, settings] in
            try await ledger.recordDownload(
                jobID: job.id, path: path, size: size, sha256: digest, sound: check.sound, storing: true, now: Date())
            if let checks = settings.checks, let check = check.check {
                try await ledger.recordCheck(
                    check, settings: checks, jobID: job.id, take: job.take, sha256: digest, now: Date())
            }
        }.value
        return .downloaded(path: path, size: size)
    }

    /// Writes the job's sound from the ledger's store, where another machine of the team
    /// saved it, and records this machine's path; nil when the ledger does not keep it.
    private func fromLedger(_ job: AudioJob) async throws -> Result? {
        guard let sha256 = job.downloadedSHA256, let size = job.downloadedSize, let store = ledger.soundStore else {
            return nil
        }
        let ext = job.savedAs.map { ($0 as NSString).pathExtension } ?? ""
        let path = await destination(
            for: job, extension: ext.isEmpty ? FileNames.fileExtension(url: job.audioURL, contentType: nil) : ext)
        defer { release(path) }
        do {
            guard try await SoundFiles.restore(sha256, from: store, to: path) else { return nil }
        } catch let error as FileError {
            throw DownloadError.file(error.description)
        }
        // In the ledger even while the run is being stopped, as a download is (`fetch`).
        try await Task { [ledger] in
            try await ledger.recordDownload(
                jobID: job.id, path: path, size: size, sha256: sha256, sound: nil, storing: false, now: Date())
        }.value
        return .fromLedger(path: path, size: size)
    }

    /// The sound just saved, measured once: its length and waveform, and, with checks asked
    /// for, what is wrong with it (the ledger holds it against its row's other takes). A file
    /// that cannot be decoded is kept all the same: the service's word is what it is, and the
    /// check says so.
    private func check(_ path: String, of job: AudioJob) -> (sound: SoundSummary?, check: TakeCheck?) {
        guard let settings = settings.checks else { return (Self.summary(of: path), nil) }
        let check = TakeCheck.of(path, settings: settings, askedSeconds: job.audioLength)
        return (check.measurement.map { SoundSummary(seconds: $0.seconds, peaks: $0.peaks) }, check)
    }

    /// DIR/<name>.<ext>, the name from the row's id (or a slug of its prompt), made safe:
    /// the row's first take plain (`door.wav`), every later one, a further variation or a
    /// re-roll, with its take (`door.take3.wav`: a take's number is its row's own, so no two
    /// takes of a row share a name, and a saved file's name never changes); the job's number
    /// added when another job has the name already.
    private func destination(for job: AudioJob, extension ext: String) async -> String {
        if let previous = job.downloadedPath, (previous as NSString).deletingLastPathComponent == settings.directory {
            return previous  // fetching again: keep the name it had
        }
        let stem = FileNames.safeName(job.keyedByContent ? FileNames.slug(job.prompt) : job.rowKey, jobID: job.id)
        let base = job.take > 1 ? "\(stem).take\(job.take)" : stem
        let plain = (settings.directory as NSString).appendingPathComponent("\(base).\(ext)")
        let numbered = (settings.directory as NSString).appendingPathComponent("\(base)-\(job.id).\(ext)")
        // Claim the plain name first, then look in the ledger: a download that finished
        // and let go of its claim is in the ledger by then.
        let claimedPlain = claimedPaths.withLock { $0.insert(FileNames.caseKey(plain)).inserted }
        if claimedPlain {
            // A ledger that cannot be read here leaves the numbered name, which is always free.
            let taken =
                (try? await ledger.isPathTaken(plain, byOtherThan: job.id)) ?? true
                || FileManager.default.fileExists(atPath: plain)
            if !taken { return plain }
            release(plain)
        }
        claimedPaths.withLock { _ = $0.insert(FileNames.caseKey(numbered)) }
        return numbered
    }

    /// Lets go of a name once its download is recorded in the ledger, or has failed.
    private func release(_ path: String) {
        claimedPaths.withLock { _ = $0.remove(FileNames.caseKey(path)) }
    }

    /// The sound's length and waveform, measured once as it is saved; nil for a file that
    /// cannot be decoded (it is kept all the same: the service's word is what it is).
    static func summary(of path: String) -> SoundSummary? {
        guard let sound = try? SoundFile(reading: path) else { return nil }
        return SoundSummary(seconds: sound.seconds, peaks: sound.peaks())
    }

    static func fileMatches(path: String, size: Int, sha256: String) -> Bool {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            (attributes[.size] as? Int) == size,
            let data = FileManager.default.contents(atPath: path)
        else { return false }
        return SHA256.hash(data: data).hex == sha256
    }
}
