import Foundation
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchPostgres
@testable import SoundbatchSQLite

/// Every format tells the same totals, on both backends: the spend report as a table, CSV,
/// JSON, Markdown and HTML, the per-job export (a line a take) in CSV and JSON, and
/// `status --json`, over a batch with re-rolls, refusals, failed generations, jobs still
/// running and requests in doubt: one sent again, one settled by its own callback, and one
/// sent again before its callback came (paid twice).
@Suite struct TotalsAgreeTests {
    /// What the work below must come to, counted by hand.
    static let estimated = 1.5 + 1.5 + 2 + 2 + 1 + 3 + 1 + 1  // a twice, b twice, e, f, h, j's second request
    /// a's two takes, b's new one, e, h; i's task (settled by callback), j's two (paid twice).
    static let charged = 1.6 + 1.4 + 2.1 + 1.2 + 1 + 1.3 + 1.1 + 1.0
    static let inDoubt = 2  // d (never answered) and e (sent again, answered); i and j are accounted for
    /// d has no estimate of its own: it counts at the average, 13 / 8; e at its own, 1.
    static let inDoubtMayCost = 1 + estimated / 8
    static let lines = 10 + 3  // ten jobs and three earlier takes (a's, b's, and j's first, paid twice)

    func work(_ ledger: any LedgerStore, _ folder: TemporaryFolder) async throws {
        _ = try await ledger.ingest(
            CSVReader(
                path: folder.write(
                    "jobs.csv", "id,prompt,scene\n" + "abcdefghij".map { "\($0),sound \($0),s\n" }.joined())),
            batch: "b", skipInvalid: false)
        let batchID = try await ledger.batchID(named: "b")
        let ids = Dictionary(
            uniqueKeysWithValues: try await ledger.withSending(batch: "b") { _ in
                try await allPendingJobs(ledger, batchID: batchID).map { ($0.row, $0.id) }
            })
        func job(_ row: String) async throws -> Int64 { ids[row]! }
        func send(_ row: String, _ outcome: SubmitOutcome, _ state: JobState, token: String? = nil) async throws {
            let id = try await job(row)
            let attempt = try await ledger.markSubmitting(jobID: id, callbackToken: token, now: Date())
            try await ledger.recordSubmission(
                jobID: id, attemptID: attempt, outcome: outcome, state: state, latency: .milliseconds(5), now: Date())
        }
        func accept(_ row: String, _ task: String, _ estimate: Double) async throws {
            try await send(row, .accepted(SubmitAnswer(taskID: task, creditEstimate: estimate)), .submitted)
        }
        func finish(_ row: String, _ news: RemoteStatus) async throws {
            try await ledger.recordStatus(jobID: try await job(row), news, now: Date())
        }
        let done = { (cost: Double) in
            RemoteStatus(status: "COMPLETED", audioURL: "https://x/a.wav", conversionCost: cost)
        }
        try await ledger.withSending(batch: "b") { _ in
            try await accept("a", "a1", 1.5)
            try await finish("a", done(1.6))
            try await accept("b", "b1", 2)
            try await finish("b", RemoteStatus(status: "FAILED", statusMessage: "could not"))
            try await send("c", .rejected(status: 422, error: "refused"), .failed)
            try await send("d", .noAnswer(status: nil, error: "no answer"), .inDoubt)
            try await send("e", .noAnswer(status: nil, error: "no answer"), .inDoubt)
            try await accept("f", "f1", 3)
            try await accept("h", "h1", 1)
            try await finish("h", done(1))
            // i and j get no answer, their requests carrying callback tokens; i's callback comes.
            try await send("i", .noAnswer(status: nil, error: "no answer"), .inDoubt, token: "token-i")
            try await send("j", .noAnswer(status: nil, error: "no answer"), .inDoubt, token: "token-j")
            let i = try await job("i")
            #expect(
                try await ledger.settle(
                    jobID: i, callbackToken: "token-i", taskID: "i1", status: done(1.3), now: Date()) == .settled)
            try await finish("i", done(1.3))
        }
        // A re-roll of a, a retry of b, and e sent again on purpose.
        _ = try await ledger.startNewTakes(
            jobIDs: [try await job("a"), try await job("b")], prompts: [:], now: Date())
        _ = try await ledger.requeueInDoubt(batchID: batchID, awaitingSince: nil, now: Date())
        let d = try await job("d")
        try await ledger.withSending(batch: "b") { _ in
            try await accept("a", "a2", 1.5)
            try await finish("a", done(1.4))
            try await accept("b", "b2", 2)
            try await finish("b", done(2.1))
            try await accept("e", "e2", 1)
            try await finish("e", done(1.2))
            // j was sent again, and its first request's callback comes after: two tasks, both charged.
            try await accept("j", "j2", 1)
            try await finish("j", done(1.1))
            #expect(
                try await ledger.settle(
                    jobID: try await job("j"), callbackToken: "token-j", taskID: "j1", status: done(1.0), now: Date())
                    == .keptAsEarlierTake)
            // d stays in doubt: the requeue took it back to pending; hold it again.
            let attempt = try await ledger.markSubmitting(jobID: d, now: Date())
            try await ledger.recordSubmission(
                jobID: d, attemptID: attempt, outcome: .noAnswer(status: nil, error: "no answer"), state: .inDoubt,
                latency: .seconds(60), now: Date())
        }
    }

    func same(_ a: Double?, _ b: Double, _ what: String) {
        #expect(a.map { abs($0 - b) < 0.005 } == true, "\(what): \(String(describing: a)) against \(b)")
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test(arguments: Backend.allCases)
    func everyFormatTellsTheSameTotals(_ backend: Backend) async throws {
        try await backend.withCommandLedger { ledger, folder, location in
            try await work(ledger, folder)
            func report(_ arguments: [String]) async throws -> String {
                let result = try await soundbatch(["report", "--ledger", location] + arguments, in: folder.path)
                #expect(result.status == 0, "\(arguments): \(result.stderr)")
                return result.stdout
            }
            // The seam's own totals, and the chart's last point.
            let total = try await ledger.spendReport(ReportQuery()).total
            same(total.creditsEstimated, Self.estimated, "estimated")
            same(total.creditsCharged, Self.charged, "charged")
            #expect(total.inDoubt == Self.inDoubt)
            #expect(total.settledByCallback == 1 && total.paidTwice == 1)
            same(total.inDoubtMayCost, Self.inDoubtMayCost, "in doubt")
            let last = try #require(try await ledger.creditTimeline(ReportQuery(), points: 300).last)
            same(last.estimated, Self.estimated, "chart, estimated")
            same(last.charged, Self.charged, "chart, charged")

            // JSON totals.
            let totals = try await #require(try json(try report(["--format", "json"]))["total"] as? [String: Any])
            same(totals["credits_estimated"] as? Double, Self.estimated, "json estimated")
            same(totals["credits_charged"] as? Double, Self.charged, "json charged")
            #expect(totals["requests_in_doubt"] as? Int == Self.inDoubt)
            #expect(totals["settled_by_callback"] as? Int == 1 && totals["paid_twice"] as? Int == 1)
            same(totals["requests_in_doubt_may_cost"] as? Double, Self.inDoubtMayCost, "json in doubt")

            // CSV and Markdown: the total row.
            for format in ["csv", "markdown"] {
                let text = try await report(["--format", format])
                let rows = text.split(whereSeparator: \.isNewline).map {
                    $0.split(separator: format == "csv" ? "," : "|", omittingEmptySubsequences: false)
                        .map { $0.trimmingCharacters(in: .whitespaces) }
                }
                let header = rows[0]
                let totalRow = try #require(rows.first { $0.contains("total") }, "\(format): \(text)")
                func cell(_ name: String) -> Double? {
                    header.firstIndex(of: name).flatMap { Double(totalRow[$0]) }
                }
                same(cell("credits_estimated"), Self.estimated, "\(format) estimated")
                same(cell("credits_charged"), Self.charged, "\(format) charged")
                same(cell("requests_in_doubt"), Double(Self.inDoubt), "\(format) in doubt")
                same(cell("requests_in_doubt_may_cost"), Self.inDoubtMayCost, "\(format) in doubt may cost")
                same(cell("settled_by_callback"), 1, "\(format) settled by callback")
                same(cell("paid_twice"), 1, "\(format) paid twice")
            }

            // The terminal's table and its notes.
            // Notes wrapped for a terminal, read as one line.
            let table = try await report(["--format", "table"]).replacingOccurrences(of: "\n  ", with: " ")
            let totalLine = try #require(table.split(separator: "\n").first { $0.hasPrefix("total") })
            #expect(
                totalLine.contains(ReportRenderer.money(Self.estimated))
                    && totalLine.contains(ReportRenderer.money(Self.charged)), "\(table)")
            #expect(
                table.contains("2 jobs had a request in doubt")
                    && table.contains(ReportRenderer.money(Self.inDoubtMayCost)), "\(table)")
            #expect(table.contains("1 job in doubt settled by its own callback: paid once"), "\(table)")
            #expect(table.contains("1 sound paid twice"), "\(table)")

            // The HTML page: its cards, and its chart topping out at the larger of the two.
            let html = try await report(["--format", "html"])
            #expect(html.contains("Credits charged<b>\(ReportRenderer.money(Self.charged))</b>"))
            #expect(html.contains("Credits estimated<b>\(ReportRenderer.money(Self.estimated))</b>"))
            #expect(html.contains("Requests in doubt<b>\(Self.inDoubt)</b>"))
            #expect(html.contains("Settled by callback<b>1</b>") && html.contains("Paid twice<b>1</b>"))
            #expect(
                html.contains(
                    "<span class=\"y\" style=\"top:0\">\(ReportRenderer.money(max(Self.estimated, Self.charged)))</span>"
                ), "\(html)")

            // The per-job export: a line a take, adding up to the totals to the cent.
            let csv = try await report(["--jobs", "--format", "csv"])
            let records = try readAll(folder.write("jobs-export.csv", csv))
            let header = records[0].fields
            let lines = records.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0.fields)) }
            #expect(lines.count == Self.lines)
            func sum(_ column: String) -> Double { lines.compactMap { Double($0[column] ?? "") }.reduce(0, +) }
            same(sum("credit_estimate"), Self.estimated, "--jobs csv estimated")
            same(sum("conversion_cost"), Self.charged, "--jobs csv charged")
            #expect(lines.filter { $0["request_in_doubt"] == "1" }.count == Self.inDoubt)
            #expect(lines.filter { $0["row_key"] == "a" }.map { $0["take"] } == ["1", "2"])
            #expect(lines.filter { $0["row_key"] == "a" }.map { $0["task_id"] } == ["a1", "a2"])

            let jobsJSON = try await #require(
                try json(try report(["--jobs", "--format", "json"]))["jobs"] as? [[String: Any]])
            #expect(jobsJSON.count == Self.lines)
            same(
                jobsJSON.compactMap { $0["credit_estimate"] as? Double }.reduce(0, +), Self.estimated,
                "--jobs json estimated")
            same(
                jobsJSON.compactMap { $0["conversion_cost"] as? Double }.reduce(0, +), Self.charged,
                "--jobs json charged")

            // status, in JSON and in words.
            let status = try await soundbatch(["status", "--ledger", location, "--json"], in: folder.path)
            let batch = try #require((try json(status.stdout)["batches"] as? [[String: Any]])?.first)
            same(batch["credits_estimated"] as? Double, Self.estimated, "status estimated")
            same(batch["credits_charged"] as? Double, Self.charged, "status charged")
            #expect(batch["requests_in_doubt"] as? Int == Self.inDoubt)
            same(batch["requests_in_doubt_may_cost"] as? Double, Self.inDoubtMayCost, "status in doubt")
            #expect(batch["settled_by_callback"] as? Int == 1 && batch["paid_twice"] as? Int == 1)
            let printed = try await soundbatch(["status", "--ledger", location], in: folder.path).stdout
            #expect(printed.split(separator: "\n").allSatisfy { $0.count <= 100 }, "\(printed)")
            let words = printed.replacingOccurrences(of: "\n    ", with: " ")
            #expect(words.contains("2 jobs had a request in doubt"), "\(words)")
            #expect(
                words.contains("1 job in doubt settled by its own callback") && words.contains("1 sound paid twice"),
                "\(words)")
        }
    }
}
