import AsyncHTTPClient
import Foundation
import GRDB
import Logging
import NIOCore
import NIOHTTP1
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

/// The review server over real HTTP on loopback, on each backend's ledger: who may read and
/// change what, and that a refused request changes nothing. (The page itself is driven in a
/// browser by ReviewBrowserTests.)
@Suite struct ReviewServerTests {
    let folder = try! TemporaryFolder()

    /// Batch "b" of three rows (a completed with a saved sound, b completed, c failed) and
    /// batch "other" of one completed row with a sound; the review of "b" runs while `body` does.
    func withReview(
        _ backend: Backend, _ body: (_ address: String, _ token: String, _ ledger: any LedgerStore) async throws -> Void
    ) async throws {
        try await backend.withLedger { ledger, _ in try await withReview(ledger, body) }
    }

    private func withReview(
        _ ledger: any LedgerStore,
        _ body: (_ address: String, _ token: String, _ ledger: any LedgerStore) async throws -> Void
    ) async throws {
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("b.csv", "id,prompt,scene\na,door creak,hall\nb,rain,cabin\nc,wind,moor\n")),
            batch: "b", skipInvalid: false)
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("other.csv", "id,prompt\nsecret,another batch's prompt\n")), batch: "other",
            skipInvalid: false)
        let sound = folder.file("a.wav")
        try Data(wavTone(seconds: 0.5)).write(to: URL(fileURLWithPath: sound))
        try await rawSQL(ledger, "UPDATE jobs SET state = 'completed', credit_estimate = 1.5")
        try await rawSQL(ledger, "UPDATE jobs SET download_path = '\(sound)' WHERE row_key IN ('a', 'secret')")
        try await rawSQL(ledger, "UPDATE jobs SET state = 'failed', last_error = 'HTTP 500' WHERE row_key = 'c'")
        var logger = Logger(label: "review")
        logger.logLevel = .critical
        let run = BatchRun(ledger: ledger, batch: "b", stop: StopSignal(), logger: logger)
        let review = try await ReviewServer(
            run: run, key: { throw CancellationError() }, fallbackFolder: folder.file("sounds"))
        try await review.serve(host: "127.0.0.1", port: 0, logger: logger) { address in
            try await body(String(address.prefix { $0 != "?" }.dropLast()), review.gate.token, ledger)
        }
    }

    struct Answer {
        var status: Int
        var text: String
        var headers: [String: String]
    }

    func request(
        _ url: String, method: HTTPMethod = .GET, headers: [(String, String)] = [], body: String? = nil
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        // Redirects are answers to see here, not to follow.
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let shutdown: () async -> Void = { try? await client.shutdown() }
        let answer = try await withCleanUp(shutdown) {
            let response = try await client.execute(request, timeout: .seconds(5))
            return (response, try await response.body.collect(upTo: 1 << 22))
        }
        let (response, bytes) = answer
        return Answer(
            status: Int(response.status.code), text: String(buffer: bytes),
            headers: Dictionary(response.headers.map { ($0.name.lowercased(), $0.value) }) { $1 })
    }

    func cookie(_ token: String) -> (String, String) { ("Cookie", "\(ReviewGate(token: token).cookieName)=\(token)") }

    /// Everything a request from the page itself carries.
    func fromThePage(_ address: String, _ token: String) -> [(String, String)] {
        [
            cookie(token), ("X-Review-Token", token), ("Origin", address), ("Content-Type", "application/json")
        ]
    }

    func verdicts(_ ledger: any LedgerStore) async throws -> [String?] {
        try await rawRows(ledger, "SELECT verdict FROM jobs ORDER BY id").map { try $0["verdict"] }
    }

    @Test(arguments: Backend.allCases)
    func withoutTheTokenNothingIsShownOrChanged(_ backend: Backend) async throws {
        try await withReview(backend) { address, token, ledger in
            let page = try await request(address + "/")
            #expect(page.status == 403 && !page.text.contains("door creak"))
            #expect(try await request(address + "/api/rows").status == 403)
            #expect(try await request(address + "/audio/1/1").status == 403)
            #expect(try await request(address + "/?token=wrong").status == 403)
            let body = #"{"job": 1, "take": 1, "verdict": "rejected"}"#
            // Every part of the page's credentials left out in turn: each is refused.
            let all = fromThePage(address, token)
            for missing in all.indices {
                var headers = all
                headers.remove(at: missing)
                let answer = try await request(address + "/api/verdict", method: .POST, headers: headers, body: body)
                #expect(answer.status == 403, "without \(all[missing].0)")
            }
            let foreign = all.map { $0.0 == "Origin" ? ("Origin", "http://evil.example") : $0 }
            #expect(
                try await request(address + "/api/verdict", method: .POST, headers: foreign, body: body).status == 403)
            let asForm = all.map { $0.0 == "Content-Type" ? ("Content-Type", "text/plain") : $0 }
            #expect(
                try await request(address + "/api/verdict", method: .POST, headers: asForm, body: body).status == 403)
            #expect(try await verdicts(ledger) == [nil, nil, nil, nil])

            let accepted = try await request(address + "/api/verdict", method: .POST, headers: all, body: body)
            #expect(accepted.status == 200, "\(accepted.text)")
            #expect(try await verdicts(ledger) == ["rejected", nil, nil, nil])
        }
    }

    @Test(arguments: Backend.allCases)
    func theTokenIsTradedForACookieOnlyThisSiteSendsBack(_ backend: Backend) async throws {
        try await withReview(backend) { address, token, _ in
            let first = try await request(address + "/?token=\(token)")
            #expect(first.status == 303 && first.headers["location"] == "/")
            let set = try #require(first.headers["set-cookie"])
            #expect(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("=\(token)"))
            let page = try await request(address + "/", headers: [cookie(token)])
            #expect(page.status == 200 && page.text.contains("<title>Review b"))
            #expect(page.headers["content-security-policy"]?.contains("frame-ancestors 'none'") == true)
            #expect(page.headers["x-content-type-options"] == "nosniff")
        }
    }

    @Test(arguments: Backend.allCases)
    func aHostThatIsANameIsRefusedAsDNSRebindingWouldSendIt(_ backend: Backend) async throws {
        try await withReview(backend) { address, token, _ in
            let port = address.split(separator: ":").last!
            for host in ["evil.example:\(port)", "127.0.0.1.nip.io:\(port)", "localhost.evil.example"] {
                let answer = try await request(address + "/api/rows", headers: [cookie(token), ("Host", host)])
                #expect(answer.status == 403, "\(host)")
            }
            for host in ["localhost:\(port)", "127.0.0.1:\(port)", "LOCALHOST"] {
                #expect(
                    try await request(address + "/api/rows", headers: [cookie(token), ("Host", host)]).status == 200)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func audioComesOnlyFromTheLedgersOwnFilesOfThisBatch(_ backend: Backend) async throws {
        try await withReview(backend) { address, token, _ in
            let sound = try await request(address + "/audio/1/1", headers: [cookie(token)])
            #expect(sound.status == 200 && sound.headers["content-type"] == "audio/wav")
            let size = try #require(Int(sound.headers["content-length"] ?? ""))
            let part = try await request(address + "/audio/1/1", headers: [cookie(token), ("Range", "bytes=10-19")])
            #expect(part.status == 206 && part.headers["content-range"] == "bytes 10-19/\(size)")
            let tail = try await request(address + "/audio/1/1", headers: [cookie(token), ("Range", "bytes=-4")])
            #expect(tail.status == 206 && tail.headers["content-range"] == "bytes \(size - 4)-\(size - 1)/\(size)")
            #expect(
                try await request(address + "/audio/1/1", headers: [cookie(token), ("Range", "bytes=\(size)-")]).status
                    == 416)
            // Job 4 is batch "other"'s, with a sound: not this review's to play.
            #expect(try await request(address + "/audio/4/1", headers: [cookie(token)]).status == 404)
            #expect(try await request(address + "/audio/2/1", headers: [cookie(token)]).status == 404, "no sound saved")
            for path in ["/audio/..%2F..%2Fetc%2Fpasswd/1", "/audio/1/..%2F..%2Fetc%2Fpasswd", "/audio/-1/1"] {
                #expect(try await request(address + path, headers: [cookie(token)]).status == 404, "\(path)")
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func rowsArePagedFoundAndMeasuredOnce(_ backend: Backend) async throws {
        try await withReview(backend) { address, token, ledger in
            let firstPage = try await request(address + "/api/rows?limit=2", headers: [cookie(token)])
            let page = try JSONSerialization.jsonObject(with: Data(firstPage.text.utf8)) as! [String: Any]
            let rows = page["rows"] as! [[String: Any]]
            #expect(rows.map { $0["name"] as! String } == ["a", "b"] && page["matching"] as! Int == 3)
            let take = (rows[0]["takes"] as! [[String: Any]])[0]
            #expect(take["saved"] as! Bool && (take["seconds"] as! Double - 0.5).magnitude < 0.01)
            let stored: String? = try await rawRows(ledger, "SELECT peaks FROM jobs WHERE row_key = 'a'")[0]["peaks"]
            #expect(stored == take["peaks"] as? String, "the waveform measured is kept in the ledger")

            let found = try await request(address + "/api/rows?q=CABIN", headers: [cookie(token)])
            #expect(found.text.contains("\"name\":\"b\"") && !found.text.contains("\"name\":\"a\""))
            let failed = try await request(address + "/api/rows?state=failed", headers: [cookie(token)])
            #expect(failed.text.contains("HTTP 500") && failed.text.contains("\"matching\":1"))
            #expect(try await request(address + "/api/rows?state=bogus", headers: [cookie(token)]).status == 400)
            #expect(!found.text.contains("another batch"))
        }
    }

    @Test(arguments: Backend.allCases)
    func aVerdictOnAnotherBatchOrOnNoSoundIsRefused(_ backend: Backend) async throws {
        try await withReview(backend) { address, token, ledger in
            let page = fromThePage(address, token)
            let other = try await request(
                address + "/api/verdict", method: .POST, headers: page,
                body: #"{"job": 4, "take": 1, "verdict": "kept"}"#)
            #expect(other.status == 404)
            let failed = try await request(
                address + "/api/verdict", method: .POST, headers: page,
                body: #"{"job": 3, "take": 1, "verdict": "kept"}"#)
            #expect(failed.status == 409 && failed.text.contains("not a sound"))
            let noTake = try await request(
                address + "/api/verdict", method: .POST, headers: page,
                body: #"{"job": 1, "take": 2, "verdict": "kept"}"#)
            #expect(noTake.status == 404)
            let garbage = try await request(address + "/api/verdict", method: .POST, headers: page, body: "{")
            #expect(garbage.status == 400)
            #expect(try await verdicts(ledger) == [nil, nil, nil, nil])
        }
    }

    @Test(arguments: Backend.allCases)
    func aRerollIsPlannedFromTheLedgerAndNeverSendsMoreThanItSays(_ backend: Backend) async throws {
        try await withReview(backend) { address, token, ledger in
            let page = fromThePage(address, token)
            let plan = try await request(
                address + "/api/reroll/plan", method: .POST, headers: page, body: #"{"jobs": [1, 3]}"#)
            #expect(plan.status == 200, "\(plan.text)")
            #expect(plan.text.contains("\"rows\":[\"a\",\"c\"]") && plan.text.contains("\"credits\":3"))
            let other = try await request(
                address + "/api/reroll/plan", method: .POST, headers: page, body: #"{"jobs": [4]}"#)
            #expect(other.status == 409, "another batch's job is no row of this one")
            let edited = try await request(
                address + "/api/reroll/plan", method: .POST, headers: page,
                body: #"{"jobs": [1, 2], "prompt": "more reverb"}"#)
            #expect(edited.status == 400)
            // A batch with a job not sent yet: a retry would send it too, so the review will not.
            try await rawSQL(ledger, "UPDATE jobs SET state = 'pending' WHERE row_key = 'b'")
            let held = try await request(address + "/api/reroll", method: .POST, headers: page, body: #"{"jobs": [1]}"#)
            #expect(held.status == 409 && held.text.contains("not sent yet"))
            let status = try await request(address + "/api/reroll", headers: [cookie(token)])
            #expect(status.text.contains("\"busy\":false"))
        }
    }
}
