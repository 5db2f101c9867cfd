import Foundation
import GRDB
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Reports over a ledger with a job in every state, against sums worked out by hand.
@Suite struct ReportTests {
    let folder = try! TemporaryFolder()

    /// The states of batch "a"'s jobs, one each (every state but remote_missing, which
    /// came later and is counted like failed).
    static let fixtureStates: [JobState] = [
        .pending, .submitting, .submitted, .inDoubt, .failed, .invalid, .completed, .generationFailed
    ]

    /// Batch "a": eight jobs, one per state; batch "b": two completed jobs on another day.
    func ledger() async throws -> SQLiteLedger {
        let ledger = try SQLiteLedger(path: folder.file("ledger.sqlite"))
        let rowsA = Self.fixtureStates.enumerated().map {
            "a\($0.offset),sound \($0.offset),\($0.offset + 1),\"=HYPERLINK(\"\"x\"\")\""
        }
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("a.csv", "id,prompt,audio_length,note\n" + rowsA.joined(separator: "\n"))),
            batch: "a", skipInvalid: false)
        _ = try await ledger.ingest(
            CSVReader(
                path: folder.write("b.csv", "id,prompt,audio_length,note\nb1,\"-rm, -rf\",10,@home\nb2,+plus,,x\n")),
            batch: "b", skipInvalid: false)
        try await ledger.database.write { db in
            // state, credit_estimate, conversion_cost, submitted_at, completed_at
            let a: [(JobState, Double?, Double?, String?, String?)] = [
                (.pending, nil, nil, nil, nil),
                (.submitting, nil, nil, nil, nil),
                (.submitted, 2.5, nil, "2026-11-20T10:00:00.000Z", nil),
                (.inDoubt, nil, nil, nil, nil),
                (.failed, nil, nil, nil, nil),
                (.invalid, nil, nil, nil, nil),
                (.completed, 3.0, 3.3, "2026-11-20T10:01:00.000Z", "2026-11-20T10:02:00.000Z"),
                (.generationFailed, 1.5, 0.5, "2026-11-20T10:03:00.000Z", "2026-11-20T10:04:00.000Z")
            ]
            for (index, job) in a.enumerated() {
                try db.execute(
                    sql: """
                        UPDATE jobs SET state = ?, credit_estimate = ?, conversion_cost = ?, submitted_at = ?, completed_at = ?
                        WHERE row_key = ?
                        """, arguments: [job.0.rawValue, job.1, job.2, job.3, job.4, "a\(index)"])
            }
            try db.execute(
                sql: """
                    UPDATE jobs SET state = 'completed', credit_estimate = 2, conversion_cost = 2.25,
                        submitted_at = '2026-11-22T08:00:00.000Z', completed_at = '2026-11-22T08:01:00.000Z'
                    WHERE row_key IN ('b1', 'b2')
                    """)
        }
        return ledger
    }

    @Test func totalsMatchSumsWorkedOutByHand() async throws {
        let report = try await ledger().spendReport(ReportQuery())
        #expect(report.groups.map(\.group) == ["a", "b"])
        let a = report.groups[0]
        #expect(a.jobs == 8)
        #expect(Self.fixtureStates.allSatisfy { a.states[$0.rawValue] == 1 })
        #expect(a.creditsEstimated == 7.0)  // 2.5 + 3.0 + 1.5
        #expect(a.creditsCharged == 3.8)  // 3.3 + 0.5
        #expect(a.chargedJobs == 2)
        #expect(abs(a.difference - (3.8 - 4.5)) < 1e-9)
        #expect(a.averagePerJob == 1.9)
        // Charged jobs with a length: a6 (7 s, 3.3) and a7 (8 s, 0.5).
        #expect(abs(a.averagePerSecond! - 3.8 / 15) < 1e-9)
        #expect(a.unchargedJobs == 3)  // submitting, submitted, in doubt
        #expect(a.unchargedEstimate == 2.5)
        #expect(a.firstSubmitted == "2026-11-20T10:00:00.000Z" && a.lastSubmitted == "2026-11-20T10:03:00.000Z")
        let b = report.groups[1]
        #expect(b.creditsCharged == 4.5 && b.averagePerSecond == 0.225)  // only b1 asked for a length
        #expect(report.total.jobs == 10)
        #expect(report.total.creditsCharged == 8.3 && report.total.creditsEstimated == 11)
        #expect(
            report.total.firstSubmitted == "2026-11-20T10:00:00.000Z"
                && report.total.lastSubmitted == "2026-11-22T08:00:00.000Z")
    }

    @Test func aJobFailedAfterAnUnansweredRequestHasNoChargeYet() async throws {
        let ledger = try await ledger()
        // a4 failed, refused outright: nothing can have been charged for it.
        #expect(try await ledger.spendReport(ReportQuery()).groups[0].unchargedJobs == 3)
        try await ledger.database.write {
            try $0.execute(
                sql: "UPDATE jobs SET last_error = ?, request_in_doubt = 1 WHERE row_key = 'a4'",
                arguments: ["bad prompt" + LedgerNote.unansweredBefore])
        }
        // Refused after an earlier request got no answer: the service may hold a task for it.
        let report = try await ledger.spendReport(ReportQuery())
        #expect(report.groups[0].unchargedJobs == 4 && report.total.unchargedJobs == 4)
        #expect(report.groups[0].unchargedEstimate == 2.5)
    }

    @Test func rewordingEveryMessageChangesNoReport() async throws {
        let ledger = try await ledger()
        // a4 is refused after a request of it went unanswered, as the ledger records it.
        let a4 = try await ledger.database.read {
            try Int64.fetchOne($0, sql: "SELECT id FROM jobs WHERE row_key = 'a4'")!
        }
        try await ledger.database.write {
            try $0.execute(sql: "UPDATE jobs SET state = 'pending' WHERE id = ?", arguments: [a4])
        }
        let first = try await ledger.markSubmitting(jobID: a4)
        try await ledger.recordSubmission(
            jobID: a4, attemptID: first, outcome: .noAnswer(status: nil, error: "no answer: reset"),
            state: .pending, latency: .zero)
        let second = try await ledger.markSubmitting(jobID: a4)
        try await ledger.recordSubmission(
            jobID: a4, attemptID: second, outcome: .rejected(status: 422, error: "bad prompt"),
            state: .failed, latency: .zero)
        let queries = ReportQuery.Grouping.allCases.map { ReportQuery(grouping: $0) } + [ReportQuery(batch: "a")]
        var before: [SpendReport] = []
        for query in queries { before.append(try await ledger.spendReport(query)) }
        #expect(before[0].groups[0].unchargedJobs == 4)

        // Every sentence the ledger holds, said another way.
        try await ledger.database.write { db in
            try db.execute(sql: "UPDATE jobs SET last_error = 'reworded' WHERE last_error IS NOT NULL")
            try db.execute(sql: "UPDATE jobs SET message = 'reworded', status_msg = 'reworded'")
            try db.execute(sql: "UPDATE attempts SET error = 'said differently' WHERE error IS NOT NULL")
        }
        for (query, earlier) in zip(queries, before) {
            #expect(try await ledger.spendReport(query) == earlier)
        }
    }

    @Test func groupingByDayAndByState() async throws {
        let ledger = try await ledger()
        let byDay = try await ledger.spendReport(ReportQuery(grouping: .day))
        #expect(byDay.groups.map(\.group) == ["2026-11-20", "2026-11-22", "not submitted"])
        #expect(byDay.groups.map(\.jobs) == [3, 2, 5])
        let byState = try await ledger.spendReport(ReportQuery(grouping: .state))
        #expect(byState.groups.first { $0.group == "completed" }?.jobs == 3)
        #expect(byState.total.creditsCharged == 8.3)
    }

    @Test func dateFiltersUseTheSubmissionTime() async throws {
        let ledger = try await ledger()
        let since = try await ledger.spendReport(ReportQuery(since: "2026-11-21T00:00:00.000Z"))
        #expect(since.total.jobs == 2 && since.groups.map(\.group) == ["b"])
        let until = try await ledger.spendReport(ReportQuery(until: "2026-11-20T10:02:00.000Z"))
        #expect(until.total.jobs == 2 && until.total.creditsEstimated == 5.5)
    }

    @Test func anEmptyLedgerReportsZeros() async throws {
        let report = try await SQLiteLedger(path: folder.file("empty.sqlite")).spendReport(ReportQuery())
        #expect(report.groups.isEmpty && report.total.jobs == 0 && report.total.creditsCharged == 0)
        let out = try render(report, .table)
        #expect(out.contains("total"))
    }

    @Test func anUnknownBatchIsAnError() async throws {
        await #expect {
            try await ledger().spendReport(ReportQuery(batch: "zzz"))
        } throws: { error in
            guard case LedgerError.noSuchBatch("zzz", _) = error else { return false }
            return true
        }
    }

    func render(_ report: SpendReport, _ format: ReportFormat, timeline: [CreditPoint] = []) throws -> String {
        let path = folder.file("out-\(UUID().uuidString)")
        let fd = open(path, O_WRONLY | O_CREAT, 0o644)
        let out = TextOutput(fd: fd)
        try ReportRenderer.write(
            report, timeline: timeline, format: format, to: out, title: "Spend <&>", generatedAt: "now")
        try out.flush()
        close(fd)
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    func renderJobs(_ ledger: SQLiteLedger, _ format: ReportFormat) async throws -> String {
        let path = folder.file("jobs-\(UUID().uuidString)")
        let fd = open(path, O_WRONLY | O_CREAT, 0o644)
        let out = TextOutput(fd: fd)
        let keys = ["note"]
        try ReportRenderer.writeJobsHeader(format: format, metadataKeys: keys, to: out)
        var index = 0
        try await ledger.forEachReportJob(ReportQuery(), metadataKeys: keys) { job in
            try ReportRenderer.writeJob(job, index: index, format: format, metadataKeys: keys, to: out)
            index += 1
        }
        try ReportRenderer.writeJobsFooter(format: format, to: out)
        try out.flush()
        close(fd)
        return path
    }

    @Test func jobsAsCSVReadBackEqualTheLedgerAndCannotRunAsFormulas() async throws {
        let ledger = try await ledger()
        #expect(try await ledger.metadataKeys(ReportQuery()) == ["note"])
        let records = try readAll(await renderJobs(ledger, .csv))
        #expect(records.count == 11)
        let header = records[0].fields
        #expect(header == ReportJob.columns + ["column:note"])
        let rows = try ledger.database.read { try Row.fetchAll($0, sql: "SELECT * FROM jobs ORDER BY id") }
        for (record, row) in zip(records.dropFirst(), rows) {
            let cell = Dictionary(uniqueKeysWithValues: zip(header, record.fields))
            #expect(cell["row_key"] == row["row_key"])
            #expect(cell["state"] == row["state"])
            #expect(cell["source_line"] == String(row["source_line"] as Int))
            #expect(
                cell["conversion_cost"] == (row["conversion_cost"] as Double?).map { String(format: "%.2f", $0) } ?? "")
            let prompt: String = row["prompt"]
            // User text that starts like a formula is defused with a leading quote; the rest is intact.
            #expect(cell["prompt"] == ("=+-@".contains(prompt.first!) ? "'" + prompt : prompt))
        }
        let b1 = records.first { $0.fields[1] == "b1" }!.fields
        #expect(b1[ReportJob.columns.firstIndex(of: "prompt")!] == "'-rm, -rf" && b1.last == "'@home")
        #expect(records[1].fields.last == "'=HYPERLINK(\"x\")")
    }

    @Test func decimalsAreWrittenLikePrintf() {
        for value in [0, 0.005, 1.005, -0.57, 12.345, 1e9 + 0.5, 22.6, 3] {
            #expect(
                ReportRenderer.decimal(value, places: 2) == String(format: "%.2f", value) || abs(value) == 1.005
                    || abs(value) == 0.005,
                "\(value)")
        }
        #expect(ReportRenderer.decimal(-0.004, places: 2) == "0.00")
        #expect(ReportRenderer.decimal(7, places: 0) == "7")
    }

    @Test func formulaPrefixesCoverEveryDangerousFirstCharacter() {
        for start in ["=", "+", "-", "@", "\t", "\r"] {
            let cell = ReportRenderer.csvCell(.text(start + "SUM(A1)"))
            #expect(cell.hasPrefix("'") || cell.hasPrefix("\"'"), "\(start.debugDescription)")
        }
        #expect(ReportRenderer.csvCell(.number("-0.57")) == "-0.57")
        #expect(ReportRenderer.csvCell(.text("plain")) == "plain")
    }

    @Test func jsonDecodesWithNumbersAsNumbers() async throws {
        let ledger = try await ledger()
        let totals = try render(try await ledger.spendReport(ReportQuery()), .json)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(totals.utf8)) as? [String: Any])
        let total = try #require(object["total"] as? [String: Any])
        #expect(total["credits_charged"] as? Double == 8.3)
        #expect(total["jobs"] as? Int == 10)
        let jobs = try Data(contentsOf: URL(fileURLWithPath: await renderJobs(ledger, .json)))
        let list = try #require(
            (try JSONSerialization.jsonObject(with: jobs) as? [String: Any])?["jobs"] as? [[String: Any]])
        #expect(list.count == 10)
        #expect(list[6]["conversion_cost"] as? Double == 3.3)
        #expect(list[0]["task_id"] is NSNull)
        #expect((list[0]["columns"] as? [String: String])?["note"] == "=HYPERLINK(\"x\")")
    }

    @Test func theHTMLPageIsWellFormedSelfContainedAndHoldsTheSameTotals() async throws {
        let ledger = try await ledger()
        let report = try await ledger.spendReport(ReportQuery())
        let timeline = try await ledger.creditTimeline(ReportQuery())
        #expect(timeline.last == CreditPoint(time: "2026-11-22T08:01:00", estimated: 11, charged: 8.3))
        let page = try render(report, .html, timeline: timeline)
        let parser = XMLParser(data: Data(page.utf8))
        #expect(parser.parse(), "\(String(describing: parser.parserError))")
        #expect(
            !page.contains("<script") && !page.contains("http://") && !page.contains("https://")
                && !page.contains("@import"))
        #expect(
            page.contains("<svg") && page.contains("<polyline") && page.contains("@media print")
                && page.contains("max-width: 600px"))
        #expect(page.contains("Spend &lt;&amp;&gt;"))
        #expect(page.contains("<b>8.30</b>") && page.contains(">11.00<"))
        #expect(report.total.unchargedJobs == 3 && page.contains("3 jobs have no charge yet"), "\(page)")
    }

    @Test func theHTMLPageNamesTimesStatesAndFailuresAsAPersonReadsThem() async throws {
        let ledger = try await ledger()
        let report = try await ledger.spendReport(ReportQuery())
        let failures = try await ledger.failedJobs(ReportQuery(), limit: 100)
        #expect(failures.map(\.row) == ["a4", "a7"])
        let page = try renderPage(report, timeline: try await ledger.creditTimeline(ReportQuery()), failures: failures)
        #expect(XMLParser(data: Data(page.utf8)).parse())
        // The chart spans two days: its ticks are dates, not raw timestamps.
        #expect(page.contains(">Nov 21<") && page.contains(">Nov 22<"))
        #expect(!page.contains("2026-11-20T10:00:00"))
        // Words, as in the table: "generation failed", never generation_failed, on the page.
        #expect(page.contains("generation failed 1") && !page.contains(">generation_failed"))
        #expect(page.contains("<h2>Failed jobs (2)</h2>") && page.contains("<td>a7</td>"))
        // Hours on a short span.
        let ticks = ReportRenderer.timeTicks(from: 1_790_000_000, to: 1_790_000_000 + 2 * 3600)
        #expect(ticks.map(\.label) == ["14:30", "15:00", "15:30", "16:00"])
    }

    func renderPage(
        _ report: SpendReport, timeline: [CreditPoint], failures: [FailedJob]
    ) throws
        -> String
    {
        let path = folder.file("page-\(UUID().uuidString)")
        let fd = open(path, O_WRONLY | O_CREAT, 0o644)
        let out = TextOutput(fd: fd)
        try ReportRenderer.write(
            report, timeline: timeline, failures: failures, format: .html, to: out, title: "t", generatedAt: "now")
        try out.flush()
        close(fd)
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    @Test func markdownAndTableLineUp() async throws {
        let report = try await ledger().spendReport(ReportQuery())
        let markdown = try render(report, .markdown).split(separator: "\n")
        #expect(markdown[0].hasPrefix("| batch | jobs |"))
        #expect(markdown[1].contains("---:"))
        let table = try render(report, .table).split(separator: "\n").prefix(4)
        #expect(table.count == 4)
        // Every data row ends at the same column: numbers right-aligned, text padded.
        #expect(Set(table.dropFirst().map(\.count)).count == 1)
        #expect(table[3].hasPrefix("total") && table[3].contains("8.30"))
    }
}
