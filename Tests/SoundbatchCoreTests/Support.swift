import AsyncHTTPClient
import Foundation
import GRDB
import NIOCore
import SoundbatchSandbox
import Synchronization

@testable import SoundbatchCore
@testable import SoundbatchSQLite

/// A fresh folder under the system's temporary directory, removed when the value goes.
final class TemporaryFolder: Sendable {
    let url: URL
    var path: String { url.path }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("soundbatch-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes bytes to a file in the folder and returns its path.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = url.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try write(name, Array(text.utf8))
    }

    func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// b.csv: `count` jobs with ids j1... and prompts made unique by their number.
    func writeJobs(_ count: Int, prompt: String) throws -> String {
        let rows = (1...count).map { "j\($0),\(prompt) \($0)" }
        return try write("b.csv", "id,prompt\n" + rows.joined(separator: "\n"))
    }

    /// Jobs per state in the ledger file `name` in this folder.
    func jobStates(in name: String = "ledger.sqlite") throws -> [String: Int] {
        let rows = try DatabaseQueue(path: file(name)).read { try Row.fetchAll($0, sql: "SELECT state FROM jobs") }
        return Dictionary(grouping: rows, by: { $0["state"] as String }).mapValues(\.count)
    }
}

/// Reads every record of a file.
func readAll(
    _ path: String, delimiter: UInt8? = nil, chunkSize: Int = 1 << 20, fieldLimit: Int = CSVReader.defaultFieldLimit
) throws -> [CSVRecord] {
    let reader = try CSVReader(path: path, delimiter: delimiter, fieldLimit: fieldLimit, chunkSize: chunkSize)
    var records: [CSVRecord] = []
    while let record = try reader.next() { records.append(record) }
    return records
}

/// Writes a table as RFC 4180, quoting only where needed.
func csvText(_ rows: [[String]], lineEnding: String = "\n", separator: Character = ",") -> String {
    rows.map { row in
        row.map { field in
            field.contains(where: { $0 == separator || $0 == "\"" || $0.isNewline })
                ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                : field
        }.joined(separator: String(separator))
    }.joined(separator: lineEnding) + lineEnding
}

/// What a child `soundbatch` process did.
struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// The `soundbatch` executable built beside the tests.
let soundbatchExecutable: URL = {
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
func soundbatch(
    _ arguments: [String], in directory: String, environment: [String: String] = [:]
) throws -> ProcessResult {
    let process = Process()
    process.executableURL = soundbatchExecutable
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "SOUNDBATCH_LEDGER")
    env.removeValue(forKey: "MUSICGPT_API_KEY")
    env.merge(environment) { $1 }
    process.environment = env
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

/// A value shared between tasks.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { mutex.withLock { body(&$0) } }
    var value: Value { mutex.withLock { $0 } }
}

/// A `soundbatch` child process whose output goes to files in `folder`.
struct Child {
    let process: Process
    let stdoutPath: String
    let stderrPath: String

    init(
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
    func exitStatus(within limit: Duration = .seconds(60)) async throws -> Int32 {
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

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    struct ChildTimedOut: Error {}
}

/// Polls until `condition` holds or the time is up.
func eventually(within limit: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return false
}

/// POSTs a JSON body, as the service's callbacks do, and returns the answer's status code.
func postJSON(_ body: String, to url: String, timeout: Int64 = 5) async throws -> Int {
    var request = HTTPClientRequest(url: url)
    request.method = .POST
    request.headers.add(name: "Content-Type", value: "application/json")
    request.body = .bytes(ByteBuffer(string: body))
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout))
    _ = try await response.body.collect(upTo: 1 << 16)
    return Int(response.status.code)
}

/// GETs a URL and returns the body's size in bytes.
func bodySize(of url: String) async throws -> Int {
    try await body(of: url).readableBytes
}

/// GETs a URL and returns its body as text.
func text(of url: String) async throws -> String {
    String(buffer: try await body(of: url))
}

private func body(of url: String) async throws -> ByteBuffer {
    let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
    return try await response.body.collect(upTo: 1 << 24)
}
