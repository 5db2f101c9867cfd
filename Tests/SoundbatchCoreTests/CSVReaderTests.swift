import Foundation
import SoundbatchAudio
import SoundbatchSandbox
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

@Suite struct CSVReaderTests {
    @Test func longNotesAreWrappedForATerminal() {
        let note =
            "3 jobs had a request in doubt (sent, no answer came): the service may have charged up to about 5.03 credits"
        let wrapped = note.wrapped(width: 40, indent: "  ")
        #expect(wrapped.split(separator: "\n").allSatisfy { $0.count <= 40 })
        #expect(wrapped.hasPrefix("  3 jobs") && wrapped.contains("\n    "))
        #expect(wrapped.split(whereSeparator: \.isWhitespace).joined(separator: " ") == note)
        // A word longer than a line stays whole, on a line of its own.
        #expect(
            "see /a/very/long/path/that/does/not/fit here".wrapped(width: 12)
                == "see\n  /a/very/long/path/that/does/not/fit\n  here")
    }

    let folder = try! TemporaryFolder()

    func fields(_ text: String, chunkSize: Int = 1 << 20) throws -> [[String]] {
        try readAll(folder.write("t.csv", text), chunkSize: chunkSize).map(\.fields)
    }

    @Test func plainFieldsAndLineNumbers() throws {
        let records = try readAll(folder.write("t.csv", "a,b\n1,2\n3,4\n"))
        #expect(records.map(\.fields) == [["a", "b"], ["1", "2"], ["3", "4"]])
        #expect(records.map(\.line) == [1, 2, 3])
        #expect(records.allSatisfy { $0.problem == nil })
    }

    @Test func quotedFieldsWithCommasQuotesAndNewlines() throws {
        let text = "prompt,n\n\"rain, heavy\",1\n\"say \"\"hi\"\"\",2\n\"two\nlines\",3\n\"\",4\nlast,5\n"
        let records = try readAll(folder.write("t.csv", text))
        #expect(
            records.map(\.fields) == [
                ["prompt", "n"], ["rain, heavy", "1"], ["say \"hi\"", "2"], ["two\nlines", "3"], ["", "4"],
                ["last", "5"]
            ])
        // The record after a two-line field starts two lines further down.
        #expect(records.map(\.line) == [1, 2, 3, 4, 6, 7])
    }

    @Test func lineEndingsCRLFLoneCRAndMixed() throws {
        #expect(try fields("a,b\r\n1,2\r\n") == [["a", "b"], ["1", "2"]])
        #expect(try fields("a,b\r1,2\r") == [["a", "b"], ["1", "2"]])
        let records = try readAll(folder.write("t.csv", "a\r\nb\nc\rd"))
        #expect(records.map(\.fields) == [["a"], ["b"], ["c"], ["d"]])
        #expect(records.map(\.line) == [1, 2, 3, 4])
        // A CRLF inside quotes is kept as written.
        #expect(try fields("\"x\r\ny\",z\r\n") == [["x\r\ny", "z"]])
    }

    @Test func byteOrderMarkIsSkipped() throws {
        let records = try readAll(folder.write("t.csv", [0xEF, 0xBB, 0xBF] + Array("prompt\nhello\n".utf8)))
        #expect(records.map(\.fields) == [["prompt"], ["hello"]])
    }

    @Test func blankLinesAreSkippedAndLastLineNeedsNoBreak() throws {
        let records = try readAll(folder.write("t.csv", "a\n\n\nb\r\n\r\nc"))
        #expect(records.map(\.fields) == [["a"], ["b"], ["c"]])
        #expect(records.map(\.line) == [1, 4, 6])
        #expect(try fields("") == [])
        #expect(try fields("\n\n") == [])
    }

    @Test func emptyFieldsAreKept() throws {
        #expect(try fields(",\n,,x\n\"\"\n") == [["", ""], ["", "", "x"], [""]])
    }

    @Test func unterminatedQuoteNamesTheLineWhereTheRecordStarts() throws {
        let path = try folder.write("t.csv", "prompt\nok\n\"never closed\nmore\nlines\n")
        #expect(throws: CSVError.unterminatedQuote(line: 3)) { try readAll(path) }
    }

    @Test func strayQuoteAndTextAfterClosingQuoteMarkOnlyThatRecord() throws {
        let records = try readAll(folder.write("t.csv", "a\"b,c\n\"x\"y,z\nfine,row\n"))
        #expect(records.count == 3)
        #expect(records[0].problem?.contains("quote inside an unquoted field") == true)
        #expect(records[0].fields == ["a\"b", "c"])
        #expect(records[1].problem?.contains("after the closing quote") == true)
        #expect(records[1].fields == ["xy", "z"])
        #expect(records[2].problem == nil)
    }

    @Test func invalidUTF8MarksTheRecordAndIsDecodedLossily() throws {
        let bytes = Array("prompt,n\nok,1\n".utf8) + [0x62, 0xFF, 0x61, 0x2C, 0x32, 0x0A] + Array("caf\u{E9},3\n".utf8)
        let records = try readAll(folder.write("t.csv", bytes))
        #expect(records.count == 4)
        #expect(records[2].line == 3)
        #expect(records[2].problem?.contains("field 1 is not valid UTF-8") == true)
        #expect(records[2].fields == ["b\u{FFFD}a", "2"])
        #expect(records[3].fields == ["café", "3"])
        #expect(records[3].problem == nil)
    }

    @Test func oversizedFieldStopsReading() throws {
        let path = try folder.write("t.csv", "prompt\n" + String(repeating: "x", count: 5000) + "\n")
        #expect(throws: CSVError.fieldTooLong(line: 2, limit: 4096)) { try readAll(path, fieldLimit: 4096) }
        let quoted = try folder.write("q.csv", "prompt\n\"" + String(repeating: "y\n", count: 3000))
        #expect(throws: CSVError.fieldTooLong(line: 2, limit: 4096)) { try readAll(quoted, fieldLimit: 4096) }
    }

    @Test func missingFileAndDirectoryCannotBeOpened() throws {
        #expect(throws: CSVError.self) { try CSVReader(path: folder.file("missing.csv")) }
        do {
            _ = try CSVReader(path: folder.path)
            Issue.record("a directory was opened as a CSV file")
        } catch let error as CSVError {
            #expect(error.description.contains("directory"))
        }
    }

    /// Every state of the reader must survive a chunk boundary anywhere.
    @Test(arguments: [1, 2, 3, 5, 7, 64])
    func tinyChunksReadTheSame(chunkSize: Int) throws {
        let text = "\u{FEFF}id,prompt\r\n1,\"a, \"\"b\"\"\r\nc\"\r\n2,plain\r\r\n3,caf\u{E9} \u{1F50A}\n"
        let expected = try fields(text)
        #expect(expected.count == 4)
        #expect(try fields(text, chunkSize: chunkSize) == expected)
    }

    /// Random tables written as RFC 4180 read back exactly, whatever the chunk size and
    /// separator (given: a header may hold more of another separator than its own).
    @Test func randomTablesRoundTrip() throws {
        var random = SeededRandom(seed: 20261125)
        let alphabet: [String] = ["a", "b", " ", ",", "\"", "\n", "\r\n", "é", "🔊", "x", "\t", "0"]
        for round in 0..<300 {
            let width = Int.random(in: 1...5, using: &random)
            let height = Int.random(in: 1...6, using: &random)
            let rows: [[String]] = (0..<height).map { _ in
                (0..<width).map { _ in
                    (0..<Int.random(in: 0...8, using: &random)).map { _ in alphabet.randomElement(using: &random)! }
                        .joined()
                }
            }
            // A row of one empty field is a blank line, which the reader skips by design.
            let table = rows.filter { $0 != [""] }
            let lineEnding = round.isMultiple(of: 2) ? "\n" : "\r\n"
            let separator = [",", ";", "\t"].randomElement(using: &random)!
            let path = try folder.write(
                "r.csv", csvText(table, lineEnding: lineEnding, separator: Character(separator)))
            let chunk = Int.random(in: 1...17, using: &random)
            let read = try readAll(path, delimiter: UInt8(ascii: Unicode.Scalar(separator)!), chunkSize: chunk)
            #expect(read.map(\.fields) == table, "round \(round), chunk \(chunk)")
            #expect(read.allSatisfy { $0.problem == nil })
        }
    }

    /// Random bytes never crash the reader: every outcome is records or a CSVError.
    @Test func randomBytesNeverCrash() throws {
        var random = SeededRandom(seed: 7)
        let interesting: [UInt8] = [0x22, 0x2C, 0x0A, 0x0D, 0x00, 0xFF, 0xC3, 0xA9, 0xEF, 0xBB, 0xBF, 0x61]
        for _ in 0..<500 {
            let bytes = (0..<Int.random(in: 0...64, using: &random)).map { _ in
                Bool.random(using: &random)
                    ? interesting.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
            }
            let path = try folder.write("b.csv", bytes)
            do {
                _ = try readAll(path, chunkSize: Int.random(in: 1...9, using: &random), fieldLimit: 32)
            } catch is CSVError {
                // A clear error is a fine outcome.
            }
        }
    }
}
