import Foundation
import GRDB
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite
@testable import soundbatch

/// A sheet's mistakes, said at once and undone: a lengths column not mapped, a feed that
/// doubled a batch, jobs fed by mistake, durations written as people write them, and ledger
/// paths that cannot be.
/// One child process at a time: on a two-core machine, a suite's children all at once starve the
/// tests of pace and time that run beside them.
@Suite(.serialized) struct SheetMistakeTests {
    let folder = try! TemporaryFolder()

    func jobs(_ ledger: String = "l.sqlite") throws -> [Row] {
        try DatabaseQueue(path: folder.file(ledger)).read {
            try Row.fetchAll($0, sql: "SELECT row_key, prompt, audio_length, state FROM jobs ORDER BY id")
        }
    }

    @Test func aColumnOfLengthsIsNamedAndCanBeMapped() async throws {
        let csv = try folder.write("sheet.csv", "prompt,Duration (s),scene\ndoor creak,3,a\nrain,10,b\nwind,,c\n")
        let fed = try await soundbatch(["run", csv, "--dry-run", "--ledger", "l.sqlite"], in: folder.path)
        #expect(fed.status == 0)
        #expect(fed.stdout.contains("the column \"Duration (s)\" holds lengths"), "\(fed.stdout)")
        #expect(fed.stdout.contains("--length-column \"Duration (s)\""))
        #expect(try jobs().allSatisfy { ($0["audio_length"] as Int?) == nil })
        // Taken back, and fed again with the column mapped.
        let dropped = try await soundbatch(
            ["drop", "--batch", "sheet", "--last-feed", "--yes", "--ledger", "l.sqlite"], in: folder.path)
        #expect(dropped.status == 0 && dropped.stdout.contains("removed 3 jobs"), "\(dropped.stdout)\(dropped.stderr)")
        let mapped = try await soundbatch(
            ["run", csv, "--dry-run", "--length-column", "Duration (s)", "--ledger", "l.sqlite"], in: folder.path)
        #expect(mapped.status == 0 && !mapped.stdout.contains("holds lengths"), "\(mapped.stdout)")
        #expect(try jobs().map { $0["audio_length"] as Int? } == [3, 10, nil])
        // A column whose values are not lengths is not taken for one.
        let notes = try folder.write("notes.csv", "prompt,length notes\ndoor,short please\n")
        let other = try await soundbatch(["run", notes, "--dry-run", "--ledger", "l.sqlite"], in: folder.path)
        #expect(!other.stdout.contains("holds lengths"))
    }

    @Test func aFeedThatRepeatsPendingRowsSaysSoAndIsTakenBack() async throws {
        let first = try folder.write("a.csv", "prompt,audio_length\ndoor,3\nrain,10\nwind,5\n")
        _ = try await soundbatch(["run", first, "--batch", "b", "--dry-run", "--ledger", "l.sqlite"], in: folder.path)
        // The same sheet with its length column renamed: every row is keyed anew.
        let renamed = try folder.write("b.csv", "prompt,seconds wanted\ndoor,3\nrain,10\nwind,5\n")
        let doubled = try await soundbatch(
            ["run", renamed, "--batch", "b", "--dry-run", "--ledger", "l.sqlite"], in: folder.path)
        #expect(doubled.stdout.contains("3 new"))
        #expect(doubled.stdout.contains("every row added repeats a prompt already pending"), "\(doubled.stdout)")
        #expect(doubled.stdout.contains("soundbatch drop --batch b --last-feed"))
        #expect(try jobs().count == 6)
        // Without a terminal, drop asks for --yes and removes nothing.
        let asked = try await soundbatch(
            ["drop", "--batch", "b", "--last-feed", "--ledger", "l.sqlite"], in: folder.path)
        #expect(asked.status == 64 && asked.stderr.contains("--yes") && asked.stdout.contains("3 jobs never sent"))
        #expect(try jobs().count == 6)
        let undone = try await soundbatch(
            ["drop", "--batch", "b", "--last-feed", "--yes", "--ledger", "l.sqlite"], in: folder.path)
        #expect(undone.status == 0 && undone.stdout.contains("removed 3 jobs"))
        #expect(try jobs().map { $0["audio_length"] as Int? } == [3, 10, 5])
        // A sheet fed again, or grown longer, says nothing of the kind.
        let longer = try folder.write("a.csv", "prompt,audio_length\ndoor,3\nrain,10\nwind,5\nthud,2\n")
        let again = try await soundbatch(
            ["run", longer, "--batch", "b", "--dry-run", "--ledger", "l.sqlite"], in: folder.path)
        #expect(again.stdout.contains("1 new") && !again.stdout.contains("repeats"), "\(again.stdout)")
        // Rows it does not hold are named, and nothing is removed.
        let unknown = try await soundbatch(
            ["drop", "--batch", "b", "--job", "99", "--yes", "--ledger", "l.sqlite"], in: folder.path)
        #expect(unknown.status == 64 && unknown.stderr.contains("CSV line 99"), "\(unknown.stderr)")
        #expect(try jobs().count == 4)
    }

    @Test func withSkipInvalidGivenTheMessageDoesNotSuggestIt() async throws {
        let csv = try folder.write("dup.csv", "id,prompt,audio_length\na,door,3\na,rain,4\nb,wind,lots\n")
        let plain = try await soundbatch(["run", csv, "--dry-run", "--ledger", "l.sqlite"], in: folder.path)
        #expect(plain.status == 65 && plain.stderr.contains("--skip-invalid"), "\(plain.stderr)")
        let skipping = try await soundbatch(
            ["run", csv, "--dry-run", "--skip-invalid", "--ledger", "l.sqlite"], in: folder.path)
        #expect(skipping.status == 65 && skipping.stderr.contains("used by an earlier row"), "\(skipping.stderr)")
        #expect(!skipping.stderr.contains("--skip-invalid"), "\(skipping.stderr)")
    }

    @Test func everyDurationTakesSecondsOrAUnit() async throws {
        for (text, seconds) in [
            ("30", 30.0), ("2.5", 2.5), ("30s", 30), ("300ms", 0.3), ("15m", 900), ("1h", 3600), (" 10 s", 10)
        ] {
            #expect(DurationArgument(argument: text)?.duration == .milliseconds(Int64(seconds * 1000)), "\(text)")
        }
        for text in ["", "fast", "-3s", "1d", "s"] { #expect(DurationArgument(argument: text) == nil, "\(text)") }
        let csv = try folder.writeJobs(1, prompt: "a door")
        let run = try await soundbatch(
            ["run", csv, "--dry-run", "--timeout", "30s", "--outage-limit", "15", "--ledger", "l.sqlite"],
            in: folder.path)
        #expect(run.status == 0, "\(run.stderr)")
    }

    @Test func aLedgerPathThatCannotBeSaysWhyAndARefusedFeedLeavesNoFile() async throws {
        let csv = try folder.writeJobs(1, prompt: "a door")
        let nowhere = try await soundbatch(
            ["run", csv, "--dry-run", "--ledger", "missing/folder/l.sqlite"], in: folder.path)
        #expect(nowhere.status == 74)
        #expect(
            nowhere.stderr.contains("the folder missing/folder does not exist") && nowhere.stderr.contains("mkdir -p"))
        let headerless = try folder.write("bad.csv", "name,text\na,b\n")
        let refused = try await soundbatch(["run", headerless, "--dry-run", "--ledger", "new.sqlite"], in: folder.path)
        #expect(refused.status == 65)
        #expect(!FileManager.default.fileExists(atPath: folder.file("new.sqlite")))
        #expect(!FileManager.default.fileExists(atPath: folder.file("new.sqlite-wal")))
        // A ledger that was there before stays, whatever the feed.
        _ = try await soundbatch(["run", csv, "--dry-run", "--ledger", "kept.sqlite"], in: folder.path)
        _ = try await soundbatch(["run", headerless, "--dry-run", "--ledger", "kept.sqlite"], in: folder.path)
        #expect(FileManager.default.fileExists(atPath: folder.file("kept.sqlite")))
    }
}
