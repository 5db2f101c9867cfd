import Foundation
import GRDB
import SoundbatchAudio
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

/// The library's names and its export's safety, over a real SQLite ledger and real files.
@Suite struct LibraryTests {
    let folder = try! TemporaryFolder()

    func sound(
        _ rowKey: String, take: Int = 1, columns: [String: String] = [:], prompt: String = "Rain on a tin roof"
    ) -> LibrarySound {
        LibrarySound(
            batch: "sfx", jobID: 1, rowKey: rowKey, keyedByContent: false, line: 2, take: take, prompt: prompt,
            verdict: nil, credits: nil, taskID: "t-1", source: nil, completedAt: nil,
            columns: columns.sorted { $0.key < $1.key }.map { SoundTags.Column(name: $0.key, value: $0.value) })
    }

    @Test func namesAreSafeOnEveryFileSystemWhateverTheSheetSays() throws {
        let template = try NameTemplate("{Category}/{id}_{take}")
        #expect(
            template.path(for: sound("door", columns: ["Category": "DOORS/Wood"]), ascii: false) == "DOORS_Wood/door_1")
        #expect(template.path(for: sound("door"), ascii: false) == "untitled/door_1", "an empty column")
        #expect(
            template.path(for: sound("a:b*c?", columns: ["Category": ".hidden"]), ascii: false) == "_hidden/a_b_c__1")
        #expect(
            template.path(for: sound("porte-grinçante", columns: ["Category": "Ångström"]), ascii: true)
                == "Angstrom/porte-grincante_1")
        #expect(
            template.path(for: sound("porte-grinçante", columns: ["Category": "Ångström"]), ascii: false)
                == "Ångström/porte-grinçante_1")
        #expect(try NameTemplate("{id}").path(for: sound("CON"), ascii: false) == "_CON", "a device name on Windows")
        #expect(try NameTemplate("{id}").path(for: sound("lpt1.old"), ascii: false) == "_lpt1.old")
        #expect(try NameTemplate("{id}.").path(for: sound("trailing"), ascii: false) == "trailing", "no trailing dot")
        #expect(
            try NameTemplate("{category}_{id}").path(for: sound("x", columns: ["Category": "Foley"]), ascii: false)
                == "Foley_x")
        let long = try NameTemplate("{prompt}").path(
            for: sound("x", prompt: String(repeating: "word ", count: 60)), ascii: false)
        #expect(long.utf8.count <= 100 && long.hasPrefix("word-word"))
        // Composed one way (NFC), as macOS's file system would otherwise make them differ.
        #expect(try NameTemplate("{id}").path(for: sound("e\u{301}cole"), ascii: false) == "\u{e9}cole")
    }

    /// CatIDs proposed from a prompt's words: its subject first, plurals alike, none when no
    /// word is on the list; keywords are the synonyms it holds, each once.
    @Test func catIDsAreProposedFromThePromptsSubject() {
        let best = { (prompt: String) in
            UCS.suggestions(for: prompt).first.map { "\($0.category.catID): \($0.because)" }
        }
        #expect(best("Sword unsheathe fast, metal ring") == #"WEAPSwrd: ["sword"]"#)
        #expect(best("Heavy rain on a tin roof") == #"RAINMetl: ["rain", "roof", "tin"]"#)
        #expect(best("Old door creaks open") == #"DOORCreak: ["creaks", "door", "old"]"#)
        #expect(best("qwxz vvv") == nil)
        #expect(UCS.suggestions(for: "glass breaks on stone floor").count == 3)
        #expect(UCS.category("WEAPSwrd")?.keywords(in: "Swords and a sword, a blade") == ["blade", "sword"])
    }

    @Test func aTemplateThatCannotBeReadSaysWhy() throws {
        #expect(throws: NameTemplateError.unclosed("{id")) { try NameTemplate("{id") }
        #expect(throws: NameTemplateError.unopened("id}")) { try NameTemplate("id}") }
        #expect(throws: NameTemplateError.emptyField("{}_x")) { try NameTemplate("{}_x") }
        #expect(throws: NameTemplateError.noField("sound")) { try NameTemplate("sound") }
        #expect(
            try NameTemplate("{CatID}_{FXName}_{creator}_{batch}").unknownFields(columns: ["catid", "fxname"]) == [
                "creator"
            ])
    }

    /// Batch "sfx": four completed jobs whose sounds are tones of different loudness.
    func ledger() async throws -> SQLiteLedger {
        let ledger = try SQLiteLedger(path: folder.file("ledger.sqlite"))
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("b.csv", "id,prompt,Category\nA,one,X\na,two,X\nc,three,Y\nd,four,Y\n")),
            batch: "sfx",
            skipInvalid: false)
        for (index, row) in ["A", "a", "c", "d"].enumerated() {
            let path = folder.file("\(index).wav")
            var tone = Sound(samples: wavSamples(seconds: 1.5), channels: 1, sampleRate: 8000)
            tone.amplify(by: -Double(index) * 6)
            try tone.write(
                to: path, as: SoundFormat(container: .wav, bits: 16),
                tags: SoundTags(title: row, description: "", take: 1, project: "", taskID: "", made: nil, columns: []))
            try await ledger.database.write { db in
                try db.execute(
                    sql: """
                        UPDATE jobs SET state = 'completed', task_id = ?, conversion_cost = 1.5, download_path = ?,
                            completed_at = '2026-11-30T09:08:07.000Z' WHERE row_key = ?
                        """, arguments: ["task-\(row)", path, row])
            }
        }
        return ledger
    }

    func wavSamples(seconds: Double) -> [Float] {
        (0..<Int(seconds * 8000)).map { Float(0.5 * sin(2 * Double.pi * 440 * Double($0) / 8000)) }
    }

    /// At 16 bits a level a quarter of a step keeps its shape under TPDF dither (the mean of
    /// the written samples), where rounding alone would write silence; and the same sound
    /// makes the same bytes.
    @Test func sixteenBitsAreDitheredAndTheSameSoundMakesTheSameBytes() throws {
        let quarterStep = Float(0.25 / 32768)
        let level = Sound(samples: Array(repeating: quarterStep, count: 48000), channels: 1, sampleRate: 48000)
        let tags = SoundTags(title: "t", description: "", take: 1, project: "", taskID: "", made: nil, columns: [])
        for name in ["a.wav", "b.wav"] {
            try level.write(to: folder.file(name), as: SoundFormat(container: .wav, bits: 16), tags: tags)
        }
        let written = try SoundFile(reading: folder.file("a.wav")).read().samples
        let mean = written.reduce(0, +) / Float(written.count) / quarterStep
        #expect(abs(mean - 1) < 0.1, "the mean level, in quarter steps: \(mean)")
        #expect(written.contains { $0 != 0 })
        #expect(
            FileManager.default.contents(atPath: folder.file("a.wav"))
                == FileManager.default.contents(atPath: folder.file("b.wav")))
    }

    @Test func namesTakenTwiceGetASuffixInTheSheetsOrder() async throws {
        var export = LibraryExport(batch: "sfx", folder: folder.file("lib"))
        export.template = try NameTemplate("{Category}/{id}")
        let plan = try await export.plan(try await ledger())
        #expect(
            plan.sounds.map(\.file) == ["X/A.wav", "X/a-2.wav", "Y/c.wav", "Y/d.wav"],
            "A and a are one file on macOS and Windows")
        #expect(plan.suffixed == ["X/a-2.wav"] && plan.choice == .all && plan.chosenByDefault)
    }

    @Test func anExportStoppedHalfwayCarriesOnWhereItStopped() async throws {
        let ledger = try await ledger()
        var export = LibraryExport(batch: "sfx", folder: folder.file("lib"))
        export.rendering.loudness = -20
        export.concurrency = 1
        let plan = try await export.plan(ledger)
        let stop = StopSignal()
        let first = try await export.run(plan, stop: stop) { done, _ in if done == 2 { _ = stop.stop(.interrupted) } }
        #expect(first.written == 2 && first.notReached == 2)
        #expect(
            !FileManager.default.fileExists(atPath: folder.file("lib/manifest.csv")), "no manifest of half a library")

        let second = try await export.run(plan, stop: StopSignal())
        #expect(second.alreadyRight == 2 && second.written == 2 && second.notReached == 0)
        let manifest = try String(contentsOfFile: folder.file("lib/manifest.csv"), encoding: .utf8)
        #expect(manifest.split(separator: "\r\n").count == 5)
        for file in plan.sounds.map(\.file) {
            let loudness = try SoundFile(reading: folder.file("lib/\(file)")).read().loudness()
            #expect(abs((loudness.integrated ?? 0) - -20) < 0.2, "\(file)")
        }

        // Settings changed: soundbatch's own files are made again; a file someone changed is not.
        try Data("edited".utf8).write(to: URL(fileURLWithPath: folder.file("lib/c_1.wav")))
        export.rendering.loudness = -23
        let third = try await export.run(plan, stop: StopSignal())
        #expect(
            third.written == 3 && third.leftAlone == ["c_1.wav"],
            "\(third.written) \(third.alreadyRight) \(third.leftAlone) \(third.failed)")
    }
}
