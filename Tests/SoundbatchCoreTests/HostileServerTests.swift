import Foundation
import GRDB
import Hummingbird
import Logging
import NIOCore
import Serving
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

/// A scripted server that answers badly on purpose, one way per path prefix.
struct HostileServer {
    /// Whether anything reached the path a redirect points to (with the key, that would be a leak).
    let stolen = Locked<[String]>([])

    func run(_ body: (_ url: String) async throws -> Void) async throws {
        let stolen = self.stolen
        let router = Router()
        router.post("/big/v1/sound_generator") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(repeating: UInt8(ascii: " "), count: 10 * 1024 * 1024)))
        }
        router.post("/badjson/v1/sound_generator") { _, _ in Self.json("{not json") }
        router.post("/notask/v1/sound_generator") { _, _ in Self.json(#"{"success": true, "credit_estimate": 1}"#) }
        router.post("/emptytask/v1/sound_generator") { _, _ in Self.json(#"{"success": true, "task_id": ""}"#) }
        router.post("/drip/v1/sound_generator") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody { writer in
                    for _ in 0..<50 {
                        try await writer.write(ByteBuffer(string: " "))
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    try await writer.finish(nil)
                })
        }
        router.post("/redirect/v1/sound_generator") { request, _ -> Response in
            let port = request.head.authority?.split(separator: ":").last ?? "0"
            // Another host: 127.0.0.2 is this machine too, but not the host the key was meant for.
            return Response(status: .temporaryRedirect, headers: [.location: "http://127.0.0.2:\(port)/steal"])
        }
        router.post("/steal") { request, _ -> Response in
            stolen.withLock { $0.append(request.headers[.authorization] ?? "") }
            return Self.json(#"{"success": true, "task_id": "stolen"}"#)
        }
        var logger = Logger(label: "hostile")
        logger.logLevel = .critical
        // 0.0.0.0, so that 127.0.0.2 (the redirect's other host) reaches it too.
        try await serving(router.buildResponder(), host: "0.0.0.0", port: 0, serverName: "hostile", logger: logger) {
            port in
            try await body("http://127.0.0.1:\(port)")
        }
    }

    static func json(_ text: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

@Suite struct HostileServerTests {
    let folder = try! TemporaryFolder()

    func submit(_ url: String, timeout: Duration = .seconds(2)) async -> SubmitOutcome {
        let client = MusicGPTClient(baseURL: url, key: APIKey("sk-secret")!, timeout: timeout)
        let outcome = await client.submit(SubmitRequest(prompt: "x"))
        await client.shutdown()
        return outcome
    }

    @Test func badAnswersEndAmbiguousNeverAsACrashOrALostTask() async throws {
        let server = HostileServer()
        try await server.run { url in
            for (path, clue) in [
                ("big", "larger than 1 MiB"), ("badjson", "not the expected JSON"),
                ("notask", "no task_id"), ("emptytask", "no task_id"), ("drip", "timed out")
            ] {
                // A second for the answer that drips; time to spare for the rest on a loaded machine.
                let outcome = await submit("\(url)/\(path)", timeout: .seconds(path == "drip" ? 1 : 10))
                guard case let .noAnswer(_, error) = outcome else {
                    Issue.record("\(path): \(outcome)")
                    continue
                }
                #expect(error.contains(clue), "\(path): \(error)")
            }
        }
    }

    @Test func aRedirectToAnotherHostIsNotFollowedWithTheKey() async throws {
        let server = HostileServer()
        try await server.run { url in
            let outcome = await submit("\(url)/redirect")
            guard case let .rejected(307, error) = outcome else {
                Issue.record("\(outcome)")
                return
            }
            #expect(error.contains("127.0.0.2") && !error.contains("sk-secret"))
        }
        #expect(server.stolen.value.isEmpty)
    }

    @Test func theLedgerHoldsAHostileAnswerAsAnAmbiguousJob() async throws {
        let ledger = try SQLiteLedger(path: folder.file("l.sqlite"))
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("b.csv", "prompt\none\ntwo\n")), batch: "b", skipInvalid: false)
        let batchID = try await ledger.batchID(named: "b")
        try await HostileServer().run { url in
            var settings = DispatchSettings()
            settings.rate = Rate("100/s")!
            let client = MusicGPTClient(baseURL: "\(url)/big", key: APIKey("k")!)
            var logger = Logger(label: "t")
            logger.logLevel = .critical
            let result = try await Dispatcher(
                ledger: ledger, submitter: client, settings: settings, clock: ContinuousClock(),
                stop: StopSignal(), logger: logger
            ).run(batchID: batchID)
            await client.shutdown()
            #expect(result.counters.inDoubt == 2)
        }
        let rows = try ledger.database.read { try Row.fetchAll($0, sql: "SELECT state, last_error FROM jobs") }
        #expect(
            rows.allSatisfy { $0["state"] == "in_doubt" && ($0["last_error"] as String?)?.contains("1 MiB") == true })
        let integrity = try await ledger.database.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") }
        #expect(integrity == "ok")
    }
}
