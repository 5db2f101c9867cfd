import Foundation
import SoundbatchTesting
import Testing

/// Broken and strange input files, fed to the real command: a clear message naming the
/// line where there is one, the documented exit code, and a ledger left as it was.
/// One child process at a time: on a two-core machine, a suite's children all at once starve the
/// tests of pace and time that run beside them.
@Suite(.serialized) struct CorpusTests {
    let folder = try! TemporaryFolder()

    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus")

    /// The file, the exit code, and what the message must say.
    static let cases: [(String, Int32, [String])] = [
        ("unterminated-quote.csv", 65, ["unterminated-quote.csv:3:", "never closed"]),
        ("stray-quote.csv", 65, ["stray-quote.csv:3:", "quote inside an unquoted field"]),
        ("text-after-quote.csv", 65, ["text-after-quote.csv:2:", "after the closing quote"]),
        ("too-many-fields.csv", 65, ["too-many-fields.csv:2:", "4 fields but the header has 3"]),
        ("duplicate-header.csv", 65, ["duplicate-header.csv:1:", "names \"Prompt\" twice"]),
        ("empty-header-name.csv", 65, ["empty-header-name.csv:1:", "column 2 of the header has no name"]),
        ("no-prompt-column.csv", 65, ["no-prompt-column.csv:1:", "no prompt column"]),
        ("invalid-utf8.csv", 65, ["invalid-utf8.csv:2:", "not valid UTF-8"]),
        ("nul-bytes.csv", 65, ["nul-bytes.csv:2:", "NUL byte"]),
        ("only-header.csv", 65, ["only-header.csv:2:", "header but no rows"]),
        ("empty.csv", 65, ["empty.csv:1:", "the file is empty"]),
        ("binary.png", 65, ["binary.png:1:"]),
        (
            "bad-values.csv", 65,
            [
                "bad-values.csv:2: the prompt is empty", "bad-values.csv:3: audio_length \"0\"",
                "bad-values.csv:4: audio_length \"abc\"", "bad-values.csv:5: webhook_url",
                "bad-values.csv:6: the id is empty"
            ]
        )
    ]

    /// Nothing was recorded: no ledger was left behind, or it holds no batch.
    func ledgerIsEmpty() async throws -> Bool {
        guard FileManager.default.fileExists(atPath: folder.file("ledger.sqlite")) else { return true }
        let status = try await soundbatch(["status", "--json", "--ledger", "ledger.sqlite"], in: folder.path)
        return status.stdout.contains("\"batches\":[]")
    }

    @Test(arguments: 0..<cases.count)
    func aBrokenFileIsRefusedClearlyAndRecordsNothing(index: Int) async throws {
        let (name, code, messages) = Self.cases[index]
        let path = Self.corpus.appendingPathComponent(name).path
        let result = try await soundbatch(["run", path, "--dry-run", "--ledger", "ledger.sqlite"], in: folder.path)
        #expect(result.status == code, "\(name): \(result.stderr)")
        for message in messages {
            #expect(result.stderr.contains(message), "\(name): \(result.stderr)")
        }
        #expect(try await ledgerIsEmpty())
    }

    @Test func mixedLineEndingsAreFine() async throws {
        let path = Self.corpus.appendingPathComponent("mixed-line-endings.csv").path
        let result = try await soundbatch(["run", path, "--dry-run", "--ledger", "ledger.sqlite"], in: folder.path)
        #expect(result.status == 0)
        #expect(result.stdout.contains("3 new"))
    }

    @Test func aTenMegabyteFieldIsRefusedWithoutTakingTheMemory() async throws {
        let path = try folder.write("huge.csv", "id,prompt\na," + String(repeating: "x", count: 10_000_000) + "\n")
        let result = try await soundbatch(["run", path, "--dry-run", "--ledger", "ledger.sqlite"], in: folder.path)
        #expect(result.status == 65)
        #expect(result.stderr.contains("huge.csv:2:") && result.stderr.contains("longer than 1 MiB"))
        #expect(try await ledgerIsEmpty())
    }

    @Test func pathProblemsAreUsageErrors() async throws {
        for path in [folder.file("missing.csv"), folder.path] {
            let result = try await soundbatch(["run", path, "--dry-run", "--ledger", "ledger.sqlite"], in: folder.path)
            #expect(result.status == 64, "\(path): \(result.stderr)")
            #expect(result.stderr.contains(path))
        }
    }

    @Test func aFileThatBreaksLateLeavesAnExistingLedgerAsItWas() async throws {
        let good = try folder.write("jobs.csv", "id,prompt\na,one\nb,two\n")
        try await soundbatch(["run", good, "--dry-run", "--ledger", "ledger.sqlite"], in: folder.path)
        let before = try await soundbatch(
            ["report", "--jobs", "--format", "csv", "--ledger", "ledger.sqlite"], in: folder.path
        ).stdout
        let broken = try folder.write("jobs.csv", "id,prompt\na,one\nb,two\nc,three\nd,\"open\n")
        let result = try await soundbatch(
            ["run", broken, "--dry-run", "--skip-invalid", "--ledger", "ledger.sqlite"], in: folder.path)
        #expect(result.status == 65 && result.stderr.contains("jobs.csv:5:"))
        #expect(
            try await soundbatch(["report", "--jobs", "--format", "csv", "--ledger", "ledger.sqlite"], in: folder.path)
                .stdout
                == before)
    }
}
