import AsyncHTTPClient
import Clocks
import Foundation
import GRDB
import Logging
import NIOCore
import PostgresNIO
import SoundbatchCore
import SoundbatchPostgres
import SoundbatchSQLite
import SoundbatchSandbox
import Synchronization
import Testing

// What the test targets share: temporary folders, child processes of the command line,
// both backends of the ledger (a private PostgreSQL cluster among them), clocks to drive.

/// A fresh folder under the system's temporary directory, removed when the value goes.
public final class TemporaryFolder: Sendable {
    public let url: URL
    public var path: String { url.path }

    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("soundbatch-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes bytes to a file in the folder and returns its path.
    @discardableResult
    public func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = url.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        try write(name, Array(text.utf8))
    }

    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// b.csv: `count` jobs with ids j1... and prompts made unique by their number.
    public func writeJobs(_ count: Int, prompt: String) throws -> String {
        let rows = (1...count).map { "j\($0),\(prompt) \($0)" }
        return try write("b.csv", "id,prompt\n" + rows.joined(separator: "\n"))
    }

    /// Jobs per state in the ledger file `name` in this folder.
    public func jobStates(in name: String = "ledger.sqlite") throws -> [String: Int] {
        let rows = try DatabaseQueue(path: file(name)).read { try Row.fetchAll($0, sql: "SELECT state FROM jobs") }
        return Dictionary(grouping: rows, by: { $0["state"] as String }).mapValues(\.count)
    }
}

/// Reads every record of a file.
public func readAll(
    _ path: String, delimiter: UInt8? = nil, chunkSize: Int = 1 << 20, fieldLimit: Int = CSVReader.defaultFieldLimit
) throws -> [CSVRecord] {
    let reader = try CSVReader(path: path, delimiter: delimiter, fieldLimit: fieldLimit, chunkSize: chunkSize)
    var records: [CSVRecord] = []
    while let record = try reader.next() { records.append(record) }
    return records
}

/// Writes a table as RFC 4180, quoting only where needed.
public func csvText(_ rows: [[String]], lineEnding: String = "\n", separator: Character = ",") -> String {
    rows.map { row in
        row.map { field in
            field.contains(where: { $0 == separator || $0 == "\"" || $0.isNewline })
                ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                : field
        }.joined(separator: String(separator))
    }.joined(separator: lineEnding) + lineEnding
}

/// What a child `soundbatch` process did.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// The `soundbatch` executable built beside the tests.
public let soundbatchExecutable: URL = {
    let beside = Bundle.main.bundleURL.deletingLastPathComponent()
    for folder in [
        beside, Bundle.main.bundleURL, URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    ] {
        let candidate = folder.appendingPathComponent("soundbatch")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    fatalError("the soundbatch executable was not found beside the test bundle at \(beside.path)")
}()

/// Runs `soundbatch` with the arguments, in `directory`, and waits for it.
@discardableResult
public func soundbatch(
    _ arguments: [String], in directory: String, environment: [String: String] = [:]
) async throws -> ProcessResult {
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "SOUNDBATCH_LEDGER")
    env.removeValue(forKey: "MUSICGPT_API_KEY")
    env.merge(environment) { $1 }
    return try await program(arguments, executable: soundbatchExecutable, in: directory, environment: env)
}

/// Runs a program (found on the PATH unless `executable` says where) and waits for it on a
/// thread of its own: a test that blocked one of the cooperative pool's threads (two, on a
/// two-core machine) would stall every test running beside it, and any sandbox served from
/// this process. As many run at once as there are cores: dozens at once starve the tests of
/// time and pace running beside them.
@discardableResult
public func program(
    _ arguments: [String], executable: URL = URL(fileURLWithPath: "/usr/bin/env"), in directory: String? = nil,
    environment: [String: String]? = nil
) async throws -> ProcessResult {
    await programSlots.wait()
    defer { programSlots.signal() }
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.currentDirectoryURL = directory.map { URL(fileURLWithPath: $0) }
    process.environment = environment
    return try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try waitedFor(process) }) }.start()
    }
}

private func waitedFor(_ process: Process) throws -> ProcessResult {
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes while the process runs, so a full pipe cannot stall it.
    nonisolated(unsafe) var errData = Data()
    let errReader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
    errReader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errReader.isFinished { usleep(1000) }
    return ProcessResult(
        status: process.terminationStatus,
        stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self))
}

private let programSlots = AsyncSemaphore(max(2, ProcessInfo.processInfo.activeProcessorCount))

/// At most `limit` holders at once, waited for without blocking a thread.
final class AsyncSemaphore: Sendable {
    private let state: Mutex<(free: Int, waiting: [CheckedContinuation<Void, Never>])>

    init(_ limit: Int) { state = Mutex((limit, [])) }

    func wait() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let taken = state.withLock { state in
                guard state.free > 0 else {
                    state.waiting.append(waiter)
                    return false
                }
                state.free -= 1
                return true
            }
            if taken { waiter.resume() }
        }
    }

    func signal() {
        let next = state.withLock { state in
            if state.waiting.isEmpty {
                state.free += 1
                return nil as CheckedContinuation<Void, Never>?
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}

/// A value shared between tasks.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    public init(_ value: Value) { mutex = Mutex(value) }
    public func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { mutex.withLock { body(&$0) } }
    public var value: Value { mutex.withLock { $0 } }
}

/// A `soundbatch` child process whose output goes to files in `folder`.
public struct Child: Sendable {
    public let process: Process
    public let stdoutPath: String
    public let stderrPath: String

    public init(
        _ arguments: [String], in folder: TemporaryFolder, environment: [String: String] = [:], name: String = "child"
    ) throws {
        process = Process()
        process.executableURL = soundbatchExecutable
        process.arguments = arguments
        process.currentDirectoryURL = folder.url
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SOUNDBATCH_LEDGER")
        env.removeValue(forKey: "MUSICGPT_API_KEY")
        env.merge(environment) { $1 }
        process.environment = env
        stdoutPath = folder.file("\(name).out")
        stderrPath = folder.file("\(name).err")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
    }

    /// Waits without blocking a thread of the cooperative pool (the sandbox needs them).
    public func exitStatus(within limit: Duration = .seconds(60)) async throws -> Int32 {
        let deadline = ContinuousClock.now + limit
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                throw ChildTimedOut()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    public func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    public struct ChildTimedOut: Error {}
}

/// Polls until `condition` holds or the time is up.
public func eventually(within limit: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws -> Bool
{
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return false
}

/// POSTs a JSON body, as the service's callbacks do, and returns the answer's status code.
public func postJSON(_ body: String, to url: String, timeout: Int64 = 5) async throws -> Int {
    var request = HTTPClientRequest(url: url)
    request.method = .POST
    request.headers.add(name: "Content-Type", value: "application/json")
    request.body = .bytes(ByteBuffer(string: body))
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout))
    _ = try await response.body.collect(upTo: 1 << 16)
    return Int(response.status.code)
}

/// GETs a URL and returns the body's size in bytes.
public func bodySize(of url: String) async throws -> Int {
    try await body(of: url).readableBytes
}

/// GETs a URL and returns its body as text.
public func text(of url: String) async throws -> String {
    String(buffer: try await body(of: url))
}

private func body(of url: String) async throws -> ByteBuffer {
    let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
    return try await response.body.collect(upTo: 1 << 24)
}

extension SandboxConfiguration {
    public static func with(_ tweak: (inout SandboxConfiguration) -> Void) -> SandboxConfiguration {
        var configuration = SandboxConfiguration()
        tweak(&configuration)
        return configuration
    }

    /// A sandbox for tests that want sounds, not pacing: no limits, generations of 200 ms
    /// with a true eta, none failing; then `tweak`.
    public static func quick(_ tweak: (inout SandboxConfiguration) -> Void = { _ in }) -> SandboxConfiguration {
        .with {
            $0.submitsPerMinute = nil
            $0.looksPerMinute = nil
            $0.generationTime = .milliseconds(200)
            $0.eta = .true
            $0.generationFailureRate = 0
            tweak(&$0)
        }
    }
}

/// The two backends of the ledger.
public enum Backend: String, CaseIterable, Sendable {
    case sqlite, postgres

    /// Runs `body` with a new, empty ledger of this backend: a file in a temporary folder,
    /// or a new database on the test server.
    public func withLedger<T: Sendable>(
        _ body: (any LedgerStore, TemporaryFolder) async throws -> T
    ) async throws -> T {
        let folder = try TemporaryFolder()
        switch self {
        case .sqlite:
            return try await body(try SQLiteLedger(path: folder.file("ledger.sqlite")), folder)
        case .postgres:
            let url = try await TestPostgres.shared.newDatabase()
            return try await withPostgresLedger(url, create: true, logger: quietLogger()) {
                try await body($0, folder)
            }
        }
    }
}

extension Backend {
    /// `withLedger` with two connections to the one ledger, as two people's commands on two
    /// machines would have.
    public func withTwoConnections<T: Sendable>(
        _ body: (any LedgerStore, any LedgerStore, TemporaryFolder) async throws -> T
    ) async throws -> T {
        let folder = try TemporaryFolder()
        switch self {
        case .sqlite:
            let path = folder.file("ledger.sqlite")
            return try await body(try SQLiteLedger(path: path), try SQLiteLedger(path: path, create: false), folder)
        case .postgres:
            let url = try await TestPostgres.shared.newDatabase()
            return try await withPostgresLedger(url, create: true, logger: quietLogger()) { first in
                try await withPostgresLedger(url, create: false, logger: quietLogger()) { second in
                    try await body(first, second, folder)
                }
            }
        }
    }

    /// `withLedger`, with where the command line finds the same ledger (`--ledger`).
    public func withCommandLedger<T: Sendable>(
        _ body: (any LedgerStore, TemporaryFolder, String) async throws -> T
    ) async throws -> T {
        let folder = try TemporaryFolder()
        switch self {
        case .sqlite:
            let path = folder.file("ledger.sqlite")
            return try await body(try SQLiteLedger(path: path), folder, path)
        case .postgres:
            let url = try await TestPostgres.shared.newDatabase()
            let location = "postgres://\(url.user)@\(url.host):\(url.port)/\(url.database)"
            return try await withPostgresLedger(url, create: true, logger: quietLogger()) {
                try await body($0, folder, location)
            }
        }
    }
}

/// Runs a statement on either backend's ledger, as a hand (or a newer soundbatch) might.
public func rawSQL(_ ledger: any LedgerStore, _ sql: String) async throws {
    guard let backend = ledger as? any LedgerBackend else {
        Issue.record("a ledger of no known backend")
        return
    }
    try await backend.run(SQL(stringLiteral: sql))
}

/// The rows a statement reads from either backend's ledger, as a hand might read them.
public func rawRows(_ ledger: any LedgerStore, _ sql: String) async throws -> [LedgerRow] {
    guard let backend = ledger as? any LedgerBackend else {
        throw LedgerError.failed(reason: "a ledger of no known backend")
    }
    return try await backend.rows(SQL(stringLiteral: sql))
}

/// The PostgreSQL server the tests use: `$SOUNDBATCH_TEST_POSTGRES` (as
/// `scripts/with-postgres.sh` sets it), else a private cluster that script starts for this
/// test process and stops when it ends. Never skipped: without PostgreSQL these tests fail,
/// saying how to install it.
public actor TestPostgres {
    public static let shared = TestPostgres()
    /// The server's URL, and the script serving it with the pipe to its standard input, held
    /// open for the life of this process: the cluster stops when it closes.
    private var server: (url: String, process: Process?, input: Pipe?)?

    /// A new, empty database on the server, for one test.
    public func newDatabase() async throws -> DatabaseURL {
        let admin = try DatabaseURL(try serverURL(), environment: [:])
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        _ = try await withPostgres(admin, logger: quietLogger()) { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        }
        var url = admin
        url.database = name
        return url
    }

    private func serverURL() throws -> String {
        if let server { return server.url }
        if let given = ProcessInfo.processInfo.environment["SOUNDBATCH_TEST_POSTGRES"], !given.isEmpty {
            server = (given, nil, nil)
            return given
        }
        let (line, process, input) = try servePostgres()
        server = (line, process, input)
        return line
    }
}

/// A private cluster from `scripts/with-postgres.sh --serve`, with `environment` added to
/// ours: its URL, and the script with the pipe to its standard input, to be held open for as
/// long as the cluster is wanted (it stops when the pipe closes).
public func servePostgres(environment: [String: String] = [:]) throws -> (url: String, process: Process, input: Pipe) {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/with-postgres.sh").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = [script, "--serve"]
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let output = Pipe()
    let input = Pipe()
    process.standardOutput = output
    process.standardInput = input
    try process.run()
    let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).trimmed
    guard line.hasPrefix("postgres://") else {
        throw LedgerError.cannotOpen(
            path: "PostgreSQL for the tests",
            reason: "scripts/with-postgres.sh could not start a cluster (are postgresql and openssl installed?)")
    }
    return (line, process, input)
}

public func quietLogger() -> Logger {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}

/// A private cluster that takes only TLS, with a CA and certificates `scripts/with-postgres.sh`
/// makes with openssl (`SOUNDBATCH_PG_TLS`): its certificate names localhost only, and the
/// user certuser must show one of its own. Started once for the test process.
public actor TLSPostgres {
    public static let shared = TLSPostgres()
    public nonisolated let certificates = try! TemporaryFolder()
    private var server: (url: String, process: Process, input: Pipe)?

    /// The cluster's URL, without TLS parameters.
    public func url() throws -> String {
        if let server { return server.url }
        let (line, process, input) = try servePostgres(environment: ["SOUNDBATCH_PG_TLS": certificates.path])
        server = (line, process, input)
        return line
    }
}

/// A loopback listener that answers a PostgreSQL startup message by asking for an md5 password.
public final class PasswordAskingServer: @unchecked Sendable {
    public let port: Int
    private let socket: Int32
    private var thread: Thread?

    public init() throws {
        let listening = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listening, $0, length) }
        }
        listen(listening, 4)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listening, $0, &length) }
        }
        socket = listening
        port = Int(UInt16(bigEndian: address.sin_port))
        let answering = Thread {
            while true {
                let client = accept(listening, nil, nil)
                if client < 0 { return }
                var buffer = [UInt8](repeating: 0, count: 1024)
                _ = read(client, &buffer, buffer.count)  // the startup message
                // AuthenticationMD5Password: 'R', length 12, code 5, a salt.
                let ask: [UInt8] = [UInt8(ascii: "R"), 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4]
                _ = write(client, ask, ask.count)
                usleep(200_000)
                close(client)
            }
        }
        answering.start()
        thread = answering
    }

    public func stop() {
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
    }
}

/// A test clock that knows who is asleep on it and until when, so a test can tell when
/// every caller has settled. Sleeps go on the `TestClock` inside, which the test advances.
public final class CountingClock: Clock, Sendable {
    public let base = TestClock<Duration>()

    public init() {}
    /// The deadlines of the sleeps under way.
    private let sleeping = Locked<[TestClock<Duration>.Instant]>([])

    public var now: TestClock<Duration>.Instant { base.now }
    public var minimumResolution: Duration { base.minimumResolution }

    public func sleep(until deadline: TestClock<Duration>.Instant, tolerance: Duration?) async throws {
        sleeping.withLock { $0.append(deadline) }
        defer { _ = sleeping.withLock { $0.remove(at: $0.firstIndex(of: deadline)!) } }
        try await base.sleep(until: deadline, tolerance: tolerance)
    }

    /// The earliest deadline anyone sleeps until.
    public var nextDeadline: TestClock<Duration>.Instant? { sleeping.withLock { $0.min() } }

    /// True when each of `count` callers has passed or sleeps until after now. A caller
    /// woken but not yet run still counts as asleep with a deadline come, so it is waited for.
    public func settled(passed: Int, of count: Int) -> Bool {
        let now = base.now
        return sleeping.withLock { sleeps in passed + sleeps.count == count && sleeps.allSatisfy { $0 > now } }
    }
}

/// A 16-bit mono WAV file's bytes: a 440 Hz tone at half scale, `seconds` long.
public func wavTone(seconds: Double, sampleRate: Int = 8000) -> [UInt8] {
    let samples = Int(seconds * Double(sampleRate))
    var bytes: [UInt8] = []
    func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    bytes += Array("RIFF".utf8)
    append(UInt32(36 + samples * 2))
    bytes += Array("WAVEfmt ".utf8)
    append(UInt32(16))
    append(UInt16(1))  // PCM
    append(UInt16(1))  // mono
    append(UInt32(sampleRate))
    append(UInt32(sampleRate * 2))
    append(UInt16(2))
    append(UInt16(16))
    bytes += Array("data".utf8)
    append(UInt32(samples * 2))
    for index in 0..<samples {
        append(Int16(16384 * sin(2 * Double.pi * 440 * Double(index) / Double(sampleRate))))
    }
    return bytes
}
