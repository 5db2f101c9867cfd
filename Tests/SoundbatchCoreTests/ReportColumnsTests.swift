import Foundation
import GRDB
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

/// A row's own columns in job reports: any name round-trips, none is taken for a field of
/// the report, and failed jobs carry their reason.
@Suite struct ReportColumnsTests {
    let folder = try! TemporaryFolder()

    /// A ledger of one batch whose CSV has `columns` besides id and prompt, each holding
    /// "value of NAME"; its second job failed to generate.
    func ledger(columns: [String]) async throws -> SQLiteLedger {
        let ledger = try SQLiteLedger(path: folder.file("ledger.sqlite"))
        let header = ["id", "prompt"] + columns
        let rows = ["j1", "j2"].map { id in [id, "sound \(id)"] + columns.map { "value of \($0)" } }
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("b.csv", csvText([header] + rows))), batch: "b", skipInvalid: false)
        try await ledger.database.write { db in
            try db.execute(
                sql: """
                    UPDATE jobs SET state = 'generation_failed', remote_status = 'FAILED',
                        status_msg = 'Generation failed: the model could not render this prompt'
                    WHERE row_key = 'j2'
                    """)
        }
        return ledger
    }

    func render(_ ledger: SQLiteLedger, _ format: ReportFormat, width: Int = 100) async throws -> String {
        let path = folder.file("jobs-\(UUID().uuidString)")
        let fd = open(path, O_WRONLY | O_CREAT, 0o644)
        let out = TextOutput(fd: fd)
        let keys = try await ledger.metadataKeys(ReportQuery())
        try ReportRenderer.writeJobsHeader(format: format, metadataKeys: keys, width: width, to: out)
        var index = 0
        try await ledger.forEachReportJob(ReportQuery(), metadataKeys: keys) { job in
            try ReportRenderer.writeJob(job, index: index, format: format, metadataKeys: keys, width: width, to: out)
            index += 1
        }
        try ReportRenderer.writeJobsFooter(format: format, to: out)
        try out.flush()
        close(fd)
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    /// The jobs of a JSON report.
    func jsonJobs(_ text: String) throws -> [[String: Any]] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        return try #require(object?["jobs"] as? [[String: Any]])
    }

    @Test func columnNamesWithQuotesBackslashesAndControlsRoundTrip() async throws {
        let names = ["a\"b", "back\\slash", "tab\there", "bell\u{7}", "dot.ted", "plain"]
        let ledger = try await ledger(columns: names)
        for job in try jsonJobs(await render(ledger, .json)) {
            let columns = try #require(job["columns"] as? [String: String])
            #expect(columns == Dictionary(uniqueKeysWithValues: names.map { ($0, "value of \($0)") }))
        }
        let csv = try readAll(folder.write("r.csv", await render(ledger, .csv)))
        let header = csv[0].fields
        for name in names {
            let index = try #require(header.firstIndex(of: ReportJob.ownColumnPrefix + name))
            #expect(csv.dropFirst().allSatisfy { $0.fields[index] == "value of \(name)" }, "\(name)")
        }
    }

    @Test func aColumnNamedLikeAReportFieldNeverStandsForIt() async throws {
        // (prompt and audio_length are the file's own fields already.)
        let ledger = try await ledger(columns: ReportJob.columns.filter { !["prompt", "audio_length"].contains($0) })
        let jobs = try jsonJobs(await render(ledger, .json))
        #expect(jobs.map { $0["state"] as? String } == ["pending", "generation_failed"])
        #expect(jobs.map { $0["batch"] as? String } == ["b", "b"])
        let columns = try #require(jobs[0]["columns"] as? [String: String])
        #expect(columns["state"] == "value of state" && columns.count == ReportJob.columns.count - 2)
        // Each JSON key appears once: the text has exactly one "state" key per job.
        let text = try await render(ledger, .json)
        #expect(text.components(separatedBy: "\"state\": \"pending\"").count == 2)
        let header = try readAll(folder.write("r.csv", await render(ledger, .csv)))[0].fields
        #expect(Set(header).count == header.count)
    }

    @Test func aFailedGenerationCarriesTheServicesReasonEverywhere() async throws {
        let ledger = try await ledger(columns: [])
        let reason = "Generation failed: the model could not render this prompt"
        #expect(try jsonJobs(await render(ledger, .json))[1]["reason"] as? String == reason)
        #expect(try await render(ledger, .csv).contains(reason))
        #expect(try await render(ledger, .markdown).contains(reason))
        #expect(try await render(ledger, .table, width: 200).contains(reason))
        let status = try #require(try await ledger.status(batch: "b").first)
        #expect(status.failures == [.init(state: "generation_failed", reason: reason, jobs: 1)])
    }

    @Test func onATerminalJobsAreAnAlignedTableOfWhatMattersCutToTheWidth() async throws {
        let ledger = try await ledger(columns: ["scene"])
        let lines = try await render(ledger, .table, width: 80).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("row") && lines[0].contains("state") && lines[0].contains("reason"))
        #expect(!lines[0].contains("scene") && !lines[0].contains("|"))
        #expect(lines.allSatisfy { $0.count <= 80 })
        #expect(lines[2].hasPrefix("j2") && lines[2].contains("generation failed") && lines[2].hasSuffix("…"))
        // Columns line up: the state starts at the same place on every line.
        #expect(zip(lines, ["state", "pending", "generation failed"]).allSatisfy { $0.dropFirst(22).hasPrefix($1) })
        // A wide terminal shows the file too.
        let wide = try await render(ledger, .table, width: 160).split(separator: "\n")
        #expect(wide[0].contains("file"))
    }
}
