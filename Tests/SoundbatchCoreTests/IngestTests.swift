import Foundation
import GRDB
import SoundbatchAudio
import SoundbatchSandbox
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

@Suite struct IngestTests {
    let folder = try! TemporaryFolder()
    var ledgerPath: String { folder.file("ledger.sqlite") }

    func ledger() throws -> SQLiteLedger { try SQLiteLedger(path: ledgerPath) }

    func feed(
        _ text: String, name: String = "jobs.csv", batch: String = "jobs", skipInvalid: Bool = false
    ) async throws -> IngestSummary {
        try await ledger().ingest(CSVReader(path: folder.write(name, text)), batch: batch, skipInvalid: skipInvalid)
    }

    /// The problems of a feed that must fail.
    func problems(_ text: String, skipInvalid: Bool = false) async throws -> [LineProblem] {
        do {
            _ = try await feed(text, skipInvalid: skipInvalid)
        } catch let IngestError.invalidFile(_, problems, _, _) {
            return problems
        }
        Issue.record("the feed was accepted")
        return []
    }

    func jobs(
        _ columns: String = "row_key, source_line, prompt, audio_length, webhook_url, metadata, state, last_error"
    ) throws -> [Row] {
        try ledger().database.read { try Row.fetchAll($0, sql: "SELECT \(columns) FROM jobs ORDER BY id") }
    }

    func jobCount() throws -> Int {
        try ledger().database.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM jobs")! }
    }

    @Test func theFeedLeavesReferencesCheckedAfterwards() async throws {
        // The feed switches the checks off for its own rows; every later write must be checked.
        let ledger = try ledger()
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("a.csv", "prompt\nx\n")), batch: "a", skipInvalid: false)
        await #expect(throws: IngestError.self) {
            try await ledger.ingest(
                CSVReader(path: folder.write("b.csv", "prompt\n\"open")), batch: "b", skipInvalid: false)
        }
        let checked = try await ledger.database.read { try Int.fetchOne($0, sql: "PRAGMA foreign_keys") }
        #expect(checked == 1)
        await #expect(throws: DatabaseError.self) {
            try await ledger.database.write { try $0.execute(sql: "UPDATE jobs SET batch_id = 99") }
        }
    }

    @Test func recordsRowsWithTheirColumnsAndMetadata() async throws {
        let summary = try await feed(
            #"""
            ID , Prompt,AUDIO_LENGTH,webhook_url,scene,take
            a,"Rain, heavy",30,https://example.com/hook,"night, storm",1
            b,  Door slam  ,,,"say ""hi""",
            """#)
        #expect(
            summary == IngestSummary(batch: "jobs", rows: 2, newJobs: 2, knownJobs: 0, invalidJobs: 0, newBatch: true))
        let rows = try jobs()
        #expect(rows.count == 2)
        #expect(rows[0]["row_key"] == "a")
        #expect(rows[0]["prompt"] == "Rain, heavy")
        #expect(rows[0]["audio_length"] == 30)
        #expect(rows[0]["webhook_url"] == "https://example.com/hook")
        #expect(rows[0]["state"] == "pending")
        #expect(rows[0]["source_line"] == 2)
        #expect(rows[1]["prompt"] == "Door slam")
        #expect(rows[1]["audio_length"] as Int? == nil)
        #expect(rows[1]["webhook_url"] as String? == nil)
        let metadata = try #require(rows[1]["metadata"] as String?)
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(metadata.utf8))
        #expect(decoded == ["scene": "say \"hi\"", "take": ""])
        #expect(rows[0]["metadata"] == #"{"scene":"night, storm","take":"1"}"#)
    }

    @Test func noExtraColumnsMeansNoMetadata() async throws {
        _ = try await feed("prompt\nwind\n")
        #expect(try jobs()[0]["metadata"] as String? == nil)
    }

    @Test func everyRowProblemIsListedAndNothingIsRecorded() async throws {
        let found = try await problems(
            """
            id,prompt,audio_length,webhook_url
            1,ok,10,
            2,   ,10,
            3,a,abc,
            4,b,0,
            5,c,601,
            6,d,12.5,
            7,e,,ftp://example.com/x
            8,f,,not a url
            ,g,,
            10,h,,,extra
            11,fine,600,http://localhost:8080/hook
            """)
        #expect(found.map(\.line) == [3, 4, 5, 6, 7, 8, 9, 10, 11])
        #expect(found.allSatisfy { !$0.stopsFeed })
        #expect(found[0].message.contains("prompt is empty"))
        #expect(found[1].message.contains("audio_length \"abc\""))
        #expect(found[2].message.contains("1 to 600"))
        #expect(found[3].message.contains("\"601\""))
        #expect(found[4].message.contains("\"12.5\""))
        #expect(found[5].message.contains("webhook_url \"ftp://example.com/x\""))
        #expect(found[6].message.contains("not a url"))
        #expect(found[7].message.contains("id is empty"))
        #expect(found[8].message.contains("5 fields but the header has 4"))
        #expect(try jobCount() == 0)
    }

    @Test func atMostFiftyProblemsAreShownThenACount() async throws {
        let rows = (1...120).map { "r\($0),,5" }.joined(separator: "\n")
        do {
            _ = try await feed("id,prompt,audio_length\n" + rows)
            Issue.record("accepted")
        } catch let error as IngestError {
            guard case let .invalidFile(_, problems, count, _) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(problems.count == 50)
            #expect(count == 120)
            #expect(error.description.contains("... and 70 more problems"))
            #expect(error.description.contains("jobs.csv:2: the prompt is empty"))
            #expect(error.description.contains("--skip-invalid"))
        }
    }

    @Test func skipInvalidRecordsValidRowsAndSetsInvalidOnesAside() async throws {
        let summary = try await feed("id,prompt,audio_length\na,ok,5\nb,,5\nc,fine,x\n", skipInvalid: true)
        #expect(summary.newJobs == 3)
        #expect(summary.invalidJobs == 2)
        let rows = try jobs()
        #expect(rows.map { $0["state"] as String } == ["pending", "invalid", "invalid"])
        #expect((rows[1]["last_error"] as String?)?.contains("prompt is empty") == true)
        #expect((rows[2]["last_error"] as String?)?.contains("audio_length") == true)
    }

    @Test func aCorrectedInvalidRowReplacesTheOneSetAside() async throws {
        _ = try await feed("id,prompt\na,ok\nb,\n", skipInvalid: true)
        let again = try await feed("id,prompt\na,ok\nb,now fixed\n")
        #expect(again.newJobs == 0 && again.knownJobs == 2)
        let rows = try jobs()
        #expect(rows[1]["prompt"] == "now fixed")
        #expect(rows[1]["state"] == "pending")
        #expect(rows[1]["last_error"] as String? == nil)
    }

    @Test func headerProblemsStopTheFeed() async throws {
        let cases: [(String, String)] = [
            ("", "the file is empty"),
            ("prompt\n", "header but no rows"),
            ("prompt,,x\nhi,,\n", "column 2 of the header has no name"),
            ("prompt,Scene,scene \nhi,a,b\n", "names \"scene\" twice"),
            ("Text,length\nhi,3\n", #"no prompt column (found: "Text", "length")"#),
            ("x,y\nhi,3\n", "one of them \"prompt\" (or pass --prompt-column NAME)")
        ]
        for (text, expected) in cases {
            let found = try await problems(text, skipInvalid: true)
            #expect(found.count == 1, "\(expected)")
            #expect(found.first?.message.contains(expected) == true, "\(found)")
            #expect(found.first?.stopsFeed == true)
        }
        #expect(try jobCount() == 0)
    }

    @Test func aHeaderWithoutPromptNamesTheLikeliestColumnAsWritten() async throws {
        let found = try await problems("ID;Prompt Text;audio_length\nd1;door;4\n")
        #expect(
            found.first?.message
                == #"the header has no prompt column (found: "ID", "Prompt Text", "audio_length"); "#
                + #"rename "Prompt Text" to prompt, or pass --prompt-column 'Prompt Text'"#)
    }

    @Test func promptAndIDColumnsCanBeNamed() async throws {
        let path = try folder.write("jobs.csv", "Sound ID,Prompt Text,scene\nd1,a door,hall\n")
        let summary = try await ledger().ingest(
            CSVReader(path: path), batch: "jobs", skipInvalid: false,
            columns: ColumnNames(prompt: "prompt text", id: "Sound ID"))
        #expect(summary.newJobs == 1)
        let job = try #require(try jobs().first)
        #expect(job["row_key"] as String == "d1")
        #expect(job["prompt"] as String == "a door")
        #expect(job["metadata"] as String == #"{"scene":"hall"}"#)
        for (columns, expected) in [
            (ColumnNames(prompt: "nope"), #"--prompt-column "nope": the header has no such column"#),
            (ColumnNames(id: "scene"), "--id-column")
        ] {
            do {
                _ = try await ledger().ingest(
                    CSVReader(path: folder.write("c.csv", "id,prompt,scene\na,b,c\n")), batch: "c", skipInvalid: false,
                    columns: columns)
                Issue.record("accepted")
            } catch let IngestError.invalidFile(_, problems, _, _) {
                #expect(problems.first?.message.contains(expected) == true, "\(problems)")
            }
        }
    }

    @Test func spreadsheetExportsAreRead() async throws {
        // Excel in European locales: semicolons; "Unicode Text": UTF-16 with a mark, tabs.
        let semicolons = try await feed(
            "id;prompt;audio_length\nd1;\"door; creaky\";4\n", name: "semi.csv", batch: "semi")
        #expect(semicolons.newJobs == 1)
        let text = "id\tprompt\taudio_length\nw1\tcafé wind 🌬\t5\n"
        let little: [UInt8] = text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let big: [UInt8] = text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        for (name, bytes) in [("le.txt", [0xFF, 0xFE] + little), ("be.txt", [0xFE, 0xFF] + big)] {
            let path = try folder.write(name, bytes)
            _ = try await ledger().ingest(CSVReader(path: path, chunkSize: 3), batch: name, skipInvalid: false)
        }
        let rows = try jobs("row_key, prompt, audio_length")
        #expect(rows.map { $0["prompt"] as String } == ["door; creaky", "café wind 🌬", "café wind 🌬"])
        #expect(rows.map { $0["audio_length"] as Int } == [4, 5, 5])
    }

    @Test func theSeparatorIsTheHeadersMostCommonOutsideQuotesOrTheOneGiven() async throws {
        let cases: [(String, [String])] = [
            ("a,b,c\n", ["a", "b", "c"]),
            ("a;b;c\n", ["a", "b", "c"]),
            ("a\tb\tc\n", ["a", "b", "c"]),
            ("\"x;y;z\",b\n", ["x;y;z", "b"]),  // the semicolons are quoted
            ("prompt\n", ["prompt"])
        ]
        for (text, header) in cases {
            for chunk in [1, 2, 5, 1 << 20] {
                let reader = try CSVReader(path: folder.write("s.csv", text), chunkSize: chunk)
                #expect(try reader.next()?.fields == header, "\(text) \(chunk)")
            }
        }
        let forced = try CSVReader(path: folder.write("f.csv", "a;b,c\n"), delimiter: UInt8(ascii: ","))
        #expect(try forced.next()?.fields == ["a;b", "c"])
    }

    @Test func aFileInAnotherEncodingSaysSoAndDoesNotSuggestSkippingRows() async throws {
        let latin1 = try folder.write("l.csv", Array("prompt\n".utf8) + [0x63, 0x61, 0x66, 0xE9, 0x0A])  // café
        do {
            _ = try await ledger().ingest(CSVReader(path: latin1), batch: "l", skipInvalid: false)
            Issue.record("accepted")
        } catch let error as IngestError {
            #expect("\(error)".contains("save it as \"CSV UTF-8\""))
            #expect(!"\(error)".contains("--skip-invalid"))
        }
    }

    @Test func blankAndSpaceOnlyLinesAreSkippedAndShortRowsFilledIn() async throws {
        let summary = try await feed("prompt,scene\n   \n,\none\n  \t \ntwo,hall\n")
        #expect(summary.rows == 2)
        let rows = try jobs("prompt, metadata, source_line")
        #expect(rows.map { $0["prompt"] as String } == ["one", "two"])
        #expect(rows.map { $0["metadata"] as String } == [#"{"scene":""}"#, #"{"scene":"hall"}"#])
        #expect(rows.map { $0["source_line"] as Int } == [4, 6])
    }

    /// The runs a feed writes to `ingest_rows`, across the set's 64-bit words and its end.
    @Test func anIDSetGivesItsIDsAsRunsOfConsecutiveIDs() {
        var set = IDSet()
        #expect(set.runs.isEmpty)
        for ids: ClosedRange<Int64> in [1...1, 3...63, 64...64, 65...130, 200...255, 300...300] { set.insert(ids) }
        #expect(set.runs == [1...1, 3...130, 200...255, 300...300])
        var full = IDSet()
        full.insert(1...127)
        #expect(full.runs == [1...127])  // a run up to the last bit of the last word
    }

    @Test func eachJobRemembersTheLastFeedWhoseFileHeldIt() async throws {
        let rows = (1...600).map { "r\($0),sound \($0)" }
        _ = try await feed("id,prompt\n" + rows.joined(separator: "\n"))
        let subset = "id,prompt\n" + rows.dropFirst(100).joined(separator: "\n")
        // A duplicate id far down a file fed again is found, and the feed leaves nothing.
        await #expect(throws: IngestError.self) { try await feed(subset + "\nr300,sound 300\n") }
        // Fed again without its first hundred rows.
        #expect(try await feed(subset).knownJobs == 500)
        let seen = try ledger().database.read {
            try Row.fetchAll(
                $0,
                sql: """
                    SELECT (SELECT MAX(r.ingest_id) FROM ingest_rows r WHERE j.id BETWEEN r.first_job_id AND r.last_job_id)
                           AS seen, COUNT(*) AS n
                    FROM jobs j GROUP BY seen ORDER BY seen
                    """)
        }
        #expect(seen.map { [$0["seen"] as Int, $0["n"] as Int] } == [[1, 100], [2, 500]])
        // Each feed's rows as runs of ids: a row each here.
        let runs = try ledger().database.read {
            try Row.fetchAll($0, sql: "SELECT ingest_id, first_job_id, last_job_id FROM ingest_rows ORDER BY id")
        }
        #expect(runs.map { [$0[0] as Int, $0[1] as Int, $0[2] as Int] } == [[1, 1, 600], [2, 101, 600]])
    }

    @Test func quotingErrorsNameTheirLines() async throws {
        let found = try await problems("prompt,n\nfine,1\nbro\"ken,2\n\"open,3\nmore\n", skipInvalid: true)
        #expect(found.map(\.line) == [3, 4])
        #expect(found[0].message.contains("quote inside an unquoted field"))
        #expect(found[1].message.contains("never closed"))
        #expect(found[1].stopsFeed)
        #expect(try jobCount() == 0)
    }

    @Test func invalidUTF8AndNULBytesAreRowProblems() async throws {
        let path = try folder.write(
            "bytes.csv",
            Array("prompt,n\nok,1\n".utf8) + [0xC3, 0x28, 0x2C, 0x31, 0x0A, 0x61, 0x00, 0x62, 0x2C, 0x32, 0x0A])
        do {
            _ = try await ledger().ingest(CSVReader(path: path), batch: "b", skipInvalid: false)
            Issue.record("accepted")
        } catch let IngestError.invalidFile(_, problems, _, _) {
            #expect(problems.map(\.line) == [3, 4])
            #expect(problems[0].message.contains("not valid UTF-8"))
            #expect(problems[1].message.contains("NUL byte"))
        }
    }

    @Test func feedingTheSameFileAgainAddsNothing() async throws {
        let text = "id,prompt\na,one\nb,two\nc,three\n"
        #expect(try await feed(text).newJobs == 3)
        let again = try await feed(text)
        #expect(again.newJobs == 0)
        #expect(again.knownJobs == 3)
        #expect(try jobCount() == 3)
    }

    @Test func extendedAndReorderedFilesAddOnlyNewRows() async throws {
        _ = try await feed("id,prompt\na,one\nb,two\n")
        let grown = try await feed("id,prompt\nc,three\nb,two\nd,four\na,one\n")
        #expect(grown.newJobs == 2 && grown.knownJobs == 2)
        #expect(try jobs("row_key").map { $0["row_key"] as String } == ["a", "b", "c", "d"])
    }

    @Test func rowsWithoutIdsAreKeyedByContentAndOccurrence() async throws {
        let first = try await feed("prompt,audio_length\nrain,5\nrain,5\nwind,5\nrain,6\n")
        #expect(first.newJobs == 4)
        // Reordered, with one more identical row and a new one: only those two are new.
        let second = try await feed("prompt,audio_length\nrain,6\nthunder,5\nrain,5\nwind,5\nrain,5\nrain,5\n")
        #expect(second.newJobs == 2)
        #expect(second.knownJobs == 4)
        let keys = try jobs("row_key").map { $0["row_key"] as String }
        #expect(keys.count == 6)
        #expect(Set(keys).count == 6)
        #expect(keys.allSatisfy { $0.hasPrefix("~") })
        // The same content always gives the same key, in every process.
        #expect(keys[0] == "~" + RowKey.hash("rain\u{1F}5\u{1F}") + "-1")
    }

    @Test func contentKeysAreTheSameInEveryVersion() {
        // Other keys would make a file fed again add its rows twice. "a" is FNV-1a's published test vector.
        #expect(RowKey.hash("") == "6c62272e07bb014262b821756295c58d")
        #expect(RowKey.hash("a") == "d228cb696f1a8caf78912b704e4a8964")
        #expect(RowKey.hash("rain\u{1F}5\u{1F}") == "a86ce0b39c4ff78df9d29766e87daf3c")
        #expect(RowKey.hash("pluie d’été\u{1F}\u{1F}https://example.com/h") == "f86f4f73c40c2c1ec55a79c96975d5b2")
    }

    @Test func aLargerFileKeepsItsKeysAndCountsWhenFedAgain() async throws {
        // More rows than the feed's reading thread hands over at once, one in ten identical.
        let size = 1_100
        let prompts = (0..<size).map { $0 % 10 == 0 ? "same" : "sound \($0)" }
        let file = "prompt\n" + prompts.joined(separator: "\n") + "\n"
        #expect(try await feed(file).newJobs == size)
        let keys = try jobs("row_key, source_line").map { ($0["source_line"] as Int, $0["row_key"] as String) }
        let same = keys.filter { prompts[$0.0 - 2] == "same" }.map(\.1)
        let base = "~" + RowKey.hash("same\u{1F}\u{1F}")
        #expect(same == (1...same.count).map { "\(base)-\($0)" })

        let again = try await feed(file)
        #expect(again.newJobs == 0 && again.knownJobs == size)
        let longer = try await feed(
            "prompt\n" + (prompts.reversed() + ["same", "new one"]).joined(separator: "\n") + "\n")
        #expect(longer.newJobs == 2 && longer.knownJobs == size)
    }

    @Test func knownAndNewRowsMixedInEveryChunkComeOutAsIfFedOneByOne() async throws {
        // The feed inserts rows in chunks; here each chunk mixes known rows, new ones and
        // rows set aside as invalid that are now corrected.
        let size = 200
        let old = (0..<size).filter { $0 % 3 == 0 }
        let oldFile = old.map { "id-\($0),\($0 % 9 == 0 ? "" : "sound \($0)")" }
        _ = try await feed("id,prompt\n" + oldFile.joined(separator: "\n") + "\n", skipInvalid: true)
        let fixed = old.filter { $0 % 9 == 0 }

        let summary = try await feed(
            "id,prompt\n" + (0..<size).map { "id-\($0),sound \($0)" }.joined(separator: "\n") + "\n")
        #expect(summary.newJobs == size - old.count && summary.knownJobs == old.count && summary.invalidJobs == 0)
        let rows = try jobs("row_key, source_line, prompt, state")
        #expect(rows.map { $0["row_key"] as String } == (old + (0..<size).filter { $0 % 3 != 0 }).map { "id-\($0)" })
        #expect(
            rows.allSatisfy {
                $0["state"] == "pending" && $0["prompt"] == "sound \(($0["row_key"] as String).dropFirst(3))"
            })
        // New rows and corrected ones carry their line in the newer file; the others keep theirs.
        let lines = Dictionary(uniqueKeysWithValues: rows.map { ($0["row_key"] as String, $0["source_line"] as Int) })
        for number in 0..<size {
            let line = old.contains(number) && !fixed.contains(number) ? old.firstIndex(of: number)! + 2 : number + 2
            #expect(lines["id-\(number)"] == line, "id-\(number)")
        }
    }

    @Test func aDuplicateIdFarDownALargerFileIsFound() async throws {
        var lines = (0..<1_100).map { "id-\($0),sound \($0)" }
        lines[1_000] = "id-1,another sound"
        let found = try await problems("id,prompt\n" + lines.joined(separator: "\n") + "\n")
        #expect(found.map(\.line) == [1_002])
        #expect(try jobCount() == 0)
    }

    @Test func metadataAndSpacesDoNotChangeAContentKey() async throws {
        _ = try await feed("prompt,audio_length,scene\nrain,5,a\n")
        let again = try await feed("prompt,audio_length,scene\n  rain , 5 ,b\n")
        #expect(again.newJobs == 0 && again.knownJobs == 1)
    }

    @Test func duplicateIdsInOneFileAreAnError() async throws {
        let found = try await problems("id,prompt\na,one\nb,two\na,three\n", skipInvalid: true)
        #expect(found.map(\.line) == [4])
        #expect(found[0].message.contains("\"a\" is used by an earlier row"))
        #expect(try jobCount() == 0)
    }

    @Test func aKnownIdWithChangedContentIsAConflictListingEachRow() async throws {
        _ = try await feed("id,prompt,audio_length\na,one,5\nb,two,5\nc,three,5\n")
        let found = try await problems(
            "id,prompt,audio_length\na,one,5\nb,TWO,5\nc,three,7\nd,new,1\n", skipInvalid: true)
        #expect(found.map(\.line) == [3, 4])
        #expect(found.allSatisfy { $0.stopsFeed && $0.message.contains("already in the ledger with a different") })
        #expect(try jobCount() == 3)
        #expect(try jobs()[1]["prompt"] == "two")
    }

    @Test func batchesAreSeparate() async throws {
        _ = try await feed("id,prompt\na,one\n", batch: "first")
        let other = try await feed("id,prompt\na,one\n", batch: "second")
        #expect(other.newJobs == 1)
        #expect(try await ledger().status(batch: nil).map(\.name) == ["first", "second"])
    }

    @Test func statusCountsStatesAndCredits() async throws {
        _ = try await feed("id,prompt\na,one\nb,\nc,three\n", batch: "one", skipInvalid: true)
        _ = try await feed("prompt\nx\n", batch: "two")
        try await ledger().database.write { db in
            try db.execute(sql: "UPDATE jobs SET state = 'submitted', credit_estimate = 2.5 WHERE row_key = 'a'")
            try db.execute(
                sql:
                    "UPDATE jobs SET state = 'completed', credit_estimate = 1.25, conversion_cost = 1.5 WHERE row_key = 'c'"
            )
        }
        let status = try await ledger().status()
        #expect(status.map(\.name) == ["one", "two"])
        #expect(status[0].jobs == 3)
        #expect(status[0].count(.submitted) == 1 && status[0].count(.completed) == 1 && status[0].count(.invalid) == 1)
        #expect(status[0].count(.pending) == 0)
        #expect(status[0].states.count == JobState.allCases.count)
        #expect(status[0].creditEstimateTotal == 3.75)
        #expect(status[0].conversionCostTotal == 1.5)
        #expect(try await ledger().status(batch: "two").map(\.jobs) == [1])
        await #expect {
            try await ledger().status(batch: "three")
        } throws: { error in
            guard case LedgerError.noSuchBatch("three", ["one", "two"]) = error else { return false }
            return true
        }
    }
}

/// Random valid tables go into the ledger exactly as written; random bytes never crash a feed.
@Suite struct IngestFuzzTests {
    let folder = try! TemporaryFolder()

    @Test func randomValidTablesRoundTripThroughTheLedger() async throws {
        var random = SeededRandom(seed: 99)
        let pieces = ["rain", ", ", "\"quoted\"", "\n", "é", "🔊", "  ", "door", "x", "\r\n", "'", "=1+1", "\t"]
        for round in 0..<40 {
            let count = Int.random(in: 1...100, using: &random)  // the feed inserts by 32 rows: full chunks and a rest
            var rows: [[String]] = [["id", "prompt", "audio_length", "scene"]]
            for index in 0..<count {
                var prompt = (0..<Int.random(in: 1...6, using: &random)).map { _ in
                    pieces.randomElement(using: &random)!
                }.joined()
                prompt = "p\(index) " + prompt + " end"  // never blank, and unique
                let length = Bool.random(using: &random) ? String(Int.random(in: 1...600, using: &random)) : ""
                let scene = (0..<Int.random(in: 0...3, using: &random)).map { _ in pieces.randomElement(using: &random)!
                }.joined()
                rows.append(["id-\(index)", prompt, length, scene])
            }
            let path = try folder.write(
                "r\(round).csv", csvText(rows, lineEnding: round.isMultiple(of: 2) ? "\n" : "\r\n"))
            let ledger = try SQLiteLedger(path: folder.file("r\(round).sqlite"))
            let summary = try await ledger.ingest(CSVReader(path: path), batch: "r", skipInvalid: false)
            #expect(summary.newJobs == count)
            let stored = try ledger.database.read { db in
                try Row.fetchAll(db, sql: "SELECT row_key, prompt, audio_length, metadata FROM jobs ORDER BY id")
            }
            for (row, written) in zip(stored, rows.dropFirst()) {
                #expect(row["row_key"] == written[0])
                #expect(row["prompt"] == written[1].trimmed, "round \(round)")
                #expect(row["audio_length"] as Int? == Int(written[2]))
                let metadata = try JSONDecoder().decode(
                    [String: String].self, from: Data((row["metadata"] as String).utf8))
                #expect(metadata == ["scene": written[3]])
            }
        }
    }

    @Test func randomRefeedsWithManyIdenticalRowsMatchAModel() async throws {
        // Rows without ids from a few prompts, so identical rows meet inside chunks and across
        // them; each feed reorders, drops and adds rows. The model: the k-th row with prompt p
        // in a file is job (p, k), new when the ledger does not hold it yet.
        var random = SeededRandom(seed: 7)
        let ledger = try SQLiteLedger(path: folder.file("refeed.sqlite"))
        var held: Set<String> = []
        for round in 0..<12 {
            let prompts = (0..<Int.random(in: 1...250, using: &random)).map { _ in
                "sound \(Int.random(in: 0..<20, using: &random))"
            }
            var seen: [String: Int] = [:]
            let keys = prompts.map { prompt -> String in
                seen[prompt, default: 0] += 1
                return "~" + RowKey.hash("\(prompt)\u{1F}\u{1F}") + "-\(seen[prompt]!)"
            }
            let path = try folder.write("f\(round).csv", "prompt\n" + prompts.joined(separator: "\n") + "\n")
            let summary = try await ledger.ingest(CSVReader(path: path), batch: "b", skipInvalid: false)
            let new = Set(keys).subtracting(held)
            #expect(summary.newJobs == new.count && summary.knownJobs == keys.count - new.count, "round \(round)")
            held.formUnion(keys)
            let stored = try ledger.database.read { db in
                try Row.fetchAll(db, sql: "SELECT row_key, prompt FROM jobs")
            }
            #expect(Set(stored.map { $0["row_key"] as String }) == held, "round \(round)")
            #expect(stored.count == held.count)
            #expect(
                stored.allSatisfy {
                    ($0["row_key"] as String).hasPrefix(
                        "~" + RowKey.hash("\($0["prompt"] as String)\u{1F}\u{1F}") + "-")
                })
        }
    }

    @Test func randomBytesNeverCrashAFeedAndLeaveTheLedgerSound() async throws {
        var random = SeededRandom(seed: 5)
        let ledger = try SQLiteLedger(path: folder.file("bytes.sqlite"))
        let interesting: [UInt8] = Array("prompt,id,\"\n\r".utf8) + [0x00, 0xFF, 0xC3, 0xA9]
        for round in 0..<200 {
            let bytes =
                Array("prompt,id\n".utf8)
                + (0..<Int.random(in: 0...80, using: &random)).map { _ in
                    Bool.random(using: &random)
                        ? interesting.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
                }
            let path = try folder.write("b\(round).csv", bytes)
            do {
                _ = try await ledger.ingest(
                    CSVReader(path: path), batch: "b\(round % 3)", skipInvalid: round.isMultiple(of: 2))
            } catch is IngestError {
                // A clear refusal is a fine outcome.
            }
        }
        #expect(try await ledger.database.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") } == "ok")
    }
}
