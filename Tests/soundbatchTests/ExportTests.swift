import Foundation
import GRDB
import SoundbatchSandbox
import SoundbatchTesting
import Testing

/// `soundbatch export`: a batch the service answered in MP3, written as a library, and the
/// files read back by tools soundbatch did not write: ffmpeg's EBU R128 meter, and readers of
/// the WAV and FLAC formats written here from their specifications.
@Suite(.serialized) struct ExportTests {
    let folder = try! TemporaryFolder()

    /// Five rows of an awkward sheet: a slash in an id and in a column, accents, an empty
    /// CatID, a name Windows keeps for a device, two ids alike but for case, and a prompt
    /// longer than bext's 256 bytes with a letter of two bytes across the limit.
    static let longPrompt = String(repeating: "a", count: 255) + "é and the rest of a long prompt"
    static let sheet = """
        id,prompt,Category,CatID
        door/creak,Old door créaks open,DOORS/Wood,DOORWood
        step,Footsteps on gravel,Foley,
        CON,Console beep,UI,UIBeep
        Door,\(longPrompt),UI,UIDoor
        door,A second door,UI,UIDoor2

        """

    func sandbox() -> SandboxConfiguration { .quick { $0.audioFormat = .mp3 } }

    /// ffmpeg's `ebur128` filter on a file: integrated loudness (LUFS) and true peak (dBTP).
    func measured(_ path: String) async throws -> (loudness: Double, peak: Double) {
        let text = try await program([
            "ffmpeg", "-nostats", "-hide_banner", "-i", path, "-af", "ebur128=peak=true", "-f", "null", "-"
        ]).stderr
        // The summary at the end: "I:  -16.0 LUFS" and, under "True peak:", "Peak:  -1.0 dBFS".
        let summary = text.components(separatedBy: "Summary:").last ?? ""
        func value(after label: String) -> Double? {
            guard let range = summary.range(of: label) else { return nil }
            return Double(
                summary[range.upperBound...].trimmingCharacters(in: .whitespaces).prefix { "-.0123456789".contains($0) }
            )
        }
        guard let loudness = value(after: "I:"), let peak = value(after: "Peak:") else {
            throw MeasureFailed(output: text)
        }
        return (loudness, peak)
    }

    struct MeasureFailed: Error { var output: String }

    /// A RIFF file's chunks, by id (its first of each), read by the specification.
    func chunks(_ path: String) throws -> [String: [UInt8]] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var chunks: [String: [UInt8]] = [:]
        var at = 12
        while at + 8 <= bytes.count {
            let id = String(decoding: bytes[at..<(at + 4)], as: UTF8.self)
            let size =
                Int(bytes[at + 4]) | Int(bytes[at + 5]) << 8 | Int(bytes[at + 6]) << 16 | Int(bytes[at + 7]) << 24
            if chunks[id] == nil { chunks[id] = Array(bytes[(at + 8)..<min(at + 8 + size, bytes.count)]) }
            at += 8 + size + (size & 1)
        }
        return chunks
    }

    /// A FLAC file's Vorbis comments, NAME=value, as metaflac reads them.
    func vorbisComments(_ path: String) async throws -> [String] {
        let read = try await program(["metaflac", "--export-tags-to=-", path])
        #expect(read.status == 0, "metaflac: \(read.stderr)")
        return read.stdout.split(separator: "\n").map(String.init)
    }

    /// What wavinfo (a reader of BWF and iXML from the sound-library world, on PyPI) makes
    /// of a WAV: its bext, INFO and iXML as `to_dict()` gives them, and iXML's USER fields.
    func wavinfo(_ path: String) async throws -> [String: Any] {
        let script = """
            import json, sys
            from wavinfo import WavInfoReader
            w = WavInfoReader(sys.argv[1])
            print(json.dumps({"bext": w.bext.to_dict(), "info": w.info.to_dict(), "ixml": w.ixml.to_dict(),
                              "user": {e.tag: e.text for e in w.ixml.raw_xml.find("USER")}}, default=str))
            """
        let read = try await program(["python3", "-c", script, path])
        #expect(read.status == 0, "wavinfo: \(read.stderr)")
        return try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any] ?? [:]
    }

    func soundbatchExport(_ arguments: [String], name: String) async throws -> Child {
        let child = try Child(
            ["export", "--batch", "sfx", "--ledger", "ledger.sqlite"] + arguments, in: folder, name: name)
        _ = try await child.exitStatus(within: .seconds(120))
        return child
    }

    @Test func aBatchSentAsMP3BecomesALibraryAtTheLoudnessAskedWithItsWordsInsideAndIsSafeToExportAgain() async throws {
        let csv = try folder.write("sheet.csv", Self.sheet)
        try await Sandbox.withRunning(sandbox()) { url, _ in
            let run = try Child(
                [
                    "run", csv, "--batch", "sfx", "--base-url", url, "--wait", "--download", "sounds", "--ledger",
                    "ledger.sqlite"
                ],
                in: folder, environment: ["MUSICGPT_API_KEY": "k"], name: "run")
            #expect(try await run.exitStatus() == 0, "\(run.stderr)")
        }
        let saved = try FileManager.default.contentsOfDirectory(atPath: folder.file("sounds"))
        #expect(saved.count == 5 && saved.allSatisfy { $0.hasSuffix(".mp3") }, "the service's MP3s, as they came")

        // A field empty for a row would make a name up: refused, naming the row, nothing written;
        // fields are found whatever their letter case.
        let blank = try await soundbatchExport(["--to", "library", "--name", "{catid}/{ID}_{Take}"], name: "blank")
        #expect(blank.process.terminationStatus == 65, "\(blank.stderr)")
        #expect(
            blank.stderr.contains("the name template {catid}/{ID}_{Take} leaves {catid} empty for step take 1;"),
            "\(blank.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.file("library")))

        // Without verdicts, every sound; names from the sheet, made safe; collisions suffixed.
        let library = try await soundbatchExport(
            ["--to", "library", "--loudness", "-16", "--name", "{Category}/{id}_{take}", "--ascii"], name: "export")
        #expect(library.process.terminationStatus == 0, "\(library.stderr)")
        #expect(library.stdout.contains("exporting 5 sounds (of 5 completed; no verdicts yet)"), "\(library.stdout)")
        #expect(library.stdout.contains("5 files written, 0 already right"))
        #expect(library.stdout.contains("converted to 48000 Hz: 5 from 16000 Hz"), "\(library.stdout)")
        let format = try #require(try chunks(folder.file("library/UI/CON_1.wav"))["fmt "])
        #expect(
            Array(format[4..<8]) == [0x80, 0xBB, 0, 0] && Array(format[14..<16]) == [24, 0], "48 kHz, 24-bit by default"
        )
        #expect(
            library.stdout.contains("1 name was taken already, and got a suffix: UI/door_1-2.wav"), "\(library.stdout)")
        let files = [
            "DOORS_Wood/door_creak_1.wav", "Foley/step_1.wav", "UI/CON_1.wav", "UI/Door_1.wav", "UI/door_1-2.wav"
        ]
        for file in files {
            let path = folder.file("library/\(file)")
            #expect(FileManager.default.fileExists(atPath: path), "\(file)")
            // Measured again by ffmpeg, not by soundbatch's own meter.
            let (loudness, peak) = try await measured(path)
            #expect(abs(loudness - -16) <= 0.5, "\(file): \(loudness) LUFS")
            #expect(peak <= -1 + 0.1, "\(file): a true peak of \(peak) dBTP")  // 0.1: two meters' oversampling
        }

        // bext, byte for byte: the prompt in ASCII (é as e; EBU Tech 3285) cut at 256 bytes,
        // soundbatch, the task ID, the date. The prompt whole is in iXML's NOTE.
        let tasks = try DatabaseQueue(path: folder.file("ledger.sqlite")).read { db in
            try Row.fetchAll(db, sql: "SELECT row_key, task_id, completed_at FROM jobs")
        }
        let door = try #require(tasks.first { $0["row_key"] == "Door" })
        let wav = try chunks(folder.file("library/UI/Door_1.wav"))
        let bext = try #require(wav["bext"])
        #expect(Array(bext[0..<256]) == Array((String(repeating: "a", count: 255) + "e").utf8))
        let accented = try #require(try chunks(folder.file("library/DOORS_Wood/door_creak_1.wav"))["bext"])
        let plain = Array("Old door creaks open".utf8)
        #expect(Array(accented[0..<256]) == plain + [UInt8](repeating: 0, count: 256 - plain.count))
        #expect(Array(bext[256..<288]) == Array("soundbatch".utf8) + [UInt8](repeating: 0, count: 22))
        let task: String = door["task_id"]
        #expect(Array(bext[288..<320]) == Array(task.utf8) + [UInt8](repeating: 0, count: 32 - task.utf8.count))
        let completed: String = door["completed_at"]
        #expect(Array(bext[320..<330]) == Array(completed.prefix(10).utf8), "origination date")
        #expect(Array(bext[330..<338]) == Array(completed.dropFirst(11).prefix(8).utf8), "origination time")
        let ixml = String(decoding: try #require(wav["iXML"]), as: UTF8.self)
        #expect(
            ixml.contains("<SCENE>Door</SCENE>") && ixml.contains(#"<COLUMN NAME="CatID">UIDoor</COLUMN>"#)
                && ixml.contains("<TAKE>1</TAKE>"))

        let bytes = try Data(contentsOf: URL(fileURLWithPath: folder.file("library/manifest.csv")))
        #expect(bytes.prefix(3) == Data([0xEF, 0xBB, 0xBF]), "a byte-order mark, for Excel")
        let lines = String(decoding: bytes.dropFirst(3), as: UTF8.self).split(separator: "\r\n")
        #expect(
            lines.count == 6
                && lines[0].hasPrefix("file,row,take,prompt,Category,CatID,verdict,credits_charged,task_id"),
            "the sheet's headers as written: \(lines[0])")
        #expect(
            lines.contains { $0.hasPrefix("DOORS_Wood/door_creak_1.wav,door/creak,1,Old door créaks open,DOORS/Wood,") }
        )

        // Again: nothing rewritten.
        let before = try FileManager.default.attributesOfItem(atPath: folder.file("library/UI/CON_1.wav"))
        let again = try await soundbatchExport(
            ["--to", "library", "--loudness", "-16", "--name", "{Category}/{id}_{take}", "--ascii"], name: "again")
        #expect(
            again.process.terminationStatus == 0 && again.stdout.contains("0 files written, 5 already right"),
            "\(again.stdout)")
        let after = try FileManager.default.attributesOfItem(atPath: folder.file("library/UI/CON_1.wav"))
        #expect(before[.modificationDate] as? Date == after[.modificationDate] as? Date)
        #expect(before[.systemFileNumber] as? Int == after[.systemFileNumber] as? Int)
        // --quiet, for scripts: nothing on standard output when all went well.
        let quiet = try await soundbatchExport(
            ["--to", "library", "--loudness", "-16", "--name", "{Category}/{id}_{take}", "--ascii", "--quiet"],
            name: "quiet")
        #expect(quiet.process.terminationStatus == 0 && quiet.stdout.isEmpty, "\(quiet.stdout)")

        // Someone else's file in the way is left alone, unless --force.
        try Data("not ours".utf8).write(to: URL(fileURLWithPath: folder.file("library/Foley/step_1.wav")))
        let blocked = try await soundbatchExport(
            ["--to", "library", "--loudness", "-16", "--name", "{Category}/{id}_{take}", "--ascii"], name: "blocked")
        #expect(
            blocked.process.terminationStatus == 1 && blocked.stderr.contains("Foley/step_1.wav"),
            "\(blocked.stderr)")
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: folder.file("library/Foley/step_1.wav")))
                == Data("not ours".utf8))
        let forced = try await soundbatchExport(
            ["--to", "library", "--loudness", "-16", "--name", "{Category}/{id}_{take}", "--ascii", "--force"],
            name: "forced")
        #expect(
            forced.process.terminationStatus == 0 && forced.stdout.contains("1 file written, 4 already right"),
            "\(forced.stdout)")

        // Verdicts choose: the kept ones by default, said so.
        for row in ["step", "CON"] {
            let marked = try await soundbatch(
                ["mark", "keep", "--batch", "sfx", "--job", row, "--ledger", "ledger.sqlite"], in: folder.path)
            #expect(marked.status == 0, "\(marked.stderr)")
        }
        #expect(
            try await soundbatch(
                ["mark", "reject", "--batch", "sfx", "--job", "door", "--ledger", "ledger.sqlite"], in: folder.path
            ).status == 0)
        let kept = try await soundbatchExport(["--to", "kept", "--sample-rate", "source"], name: "kept")
        let sourceRate = try #require(try chunks(folder.file("kept/CON_1.wav"))["fmt "])
        #expect(Array(sourceRate[4..<8]) == [0x80, 0x3E, 0, 0], "the sandbox's own 16 kHz")
        #expect(
            kept.stdout.contains("exporting the 2 kept sounds (of 5 completed; the batch has verdicts"),
            "\(kept.stdout)")
        #expect(
            Set(try FileManager.default.contentsOfDirectory(atPath: folder.file("kept"))) == [
                "step_1.wav", "CON_1.wav", "manifest.csv", ".soundbatch-export.jsonl"
            ])
        let unrejected = try await soundbatchExport(["--to", "unrejected", "--only", "unrejected"], name: "unrejected")
        #expect(unrejected.stdout.contains("4 files written"), "\(unrejected.stdout)")

        // FLAC, 16-bit at 48 kHz, pushed into the ceiling: turned up less, and said so.
        let flac = try await soundbatchExport(
            [
                "--to", "flac", "--only", "all", "--format", "flac", "--bits", "16", "--sample-rate", "48000",
                "--loudness", "-1"
            ],
            name: "flac")
        #expect(flac.process.terminationStatus == 0, "\(flac.stderr)")
        #expect(flac.stdout.contains("5 sounds were turned up less than the loudness target"), "\(flac.stdout)")
        let comments = try await vorbisComments(folder.file("flac/Door_1.flac"))
        #expect(comments.contains("TITLE=Door") && comments.contains("DESCRIPTION=\(Self.longPrompt)"))
        #expect(
            comments.contains("CATEGORY=UI") && comments.contains("CATID=UIDoor")
                && comments.contains("SOUNDBATCH_TASK_ID=\(task)"))
        let (_, peak) = try await measured(folder.file("flac/Door_1.flac"))
        #expect(peak <= -1 + 0.1, "held at the ceiling: \(peak) dBTP")
    }

    /// `run --takes`: three sounds of a row, each its own task and file, different from one
    /// another; a re-roll of one numbered after the row's latest; the library names them by take.
    @Test func threeSoundsOfARowAreThreeFilesAndARerollOfOneIsNumberedOn() async throws {
        let csv = try folder.write(
            "steps.csv", "id,prompt,Category,takes\nstep,Footsteps on gravel,STEPS,\nbell,Bell,UI,1\n")
        func soundbatch(_ arguments: [String], _ name: String) async throws -> Child {
            let child = try Child(
                arguments + ["--ledger", "takes.sqlite"], in: folder, environment: ["MUSICGPT_API_KEY": "k"], name: name
            )
            _ = try await child.exitStatus(within: .seconds(120))
            return child
        }
        var wav = sandbox()
        wav.audioFormat = .wav
        try await Sandbox.withRunning(wav) { url, _ in
            let run = try await soundbatch(
                ["run", csv, "--batch", "steps", "--takes", "3", "--base-url", url, "--download", "takes"], "run")
            #expect(run.process.terminationStatus == 0, "\(run.stderr)")
            #expect(
                run.stdout.contains("2 new, 0 already in the ledger; 2 further takes of its rows added"),
                "\(run.stdout)")
            let files = try FileManager.default.contentsOfDirectory(atPath: folder.file("takes")).sorted()
            #expect(files == ["bell.wav", "step.take2.wav", "step.take3.wav", "step.wav"])
            let sounds = try Set(
                ["step.wav", "step.take2.wav", "step.take3.wav"].map {
                    try Data(contentsOf: URL(fileURLWithPath: folder.file("takes/\($0)")))
                })
            #expect(sounds.count == 3, "each take its own sound")

            let mark = try await soundbatch(
                ["mark", "reject", "--batch", "steps", "--job", "step", "--take", "2"], "mark")
            #expect(mark.stdout.contains("steps: step take 2 rejected"), "\(mark.stdout) \(mark.stderr)")
            let retry = try await soundbatch(["retry", "--batch", "steps", "--rejected", "--yes", "--wait"], "retry")
            #expect(retry.process.terminationStatus == 0, "\(retry.stderr)")
            let after = try FileManager.default.contentsOfDirectory(atPath: folder.file("takes")).sorted()
            #expect(after == ["bell.wav", "step.take2.wav", "step.take3.wav", "step.take4.wav", "step.wav"])

            let again = try await soundbatch(["run", csv, "--batch", "steps", "--takes", "3"], "again")
            #expect(again.process.terminationStatus == 0, "\(again.stderr)")
            #expect(
                again.stdout.contains("0 new, 2 already in the ledger [") && !again.stdout.contains("further"),
                "\(again.stdout)")
        }
        let library = try await soundbatch(
            [
                "export", "--batch", "steps", "--to", "steps-library", "--only", "unrejected", "--name",
                "{Category}/{id}_{take}"
            ],
            "export")
        #expect(library.process.terminationStatus == 0, "\(library.stderr)")
        let exported = try FileManager.default.subpathsOfDirectory(atPath: folder.file("steps-library"))
            .filter { $0.hasSuffix(".wav") }.sorted()
        #expect(exported == ["STEPS/step_1.wav", "STEPS/step_3.wav", "STEPS/step_4.wav", "UI/bell_1.wav"])

        // A sound saved on another machine (or deleted since) is named as such, and the rest go.
        try FileManager.default.removeItem(atPath: folder.file("takes/bell.wav"))
        let elsewhere = try await soundbatch(
            ["export", "--batch", "steps", "--to", "elsewhere", "--only", "unrejected"], "elsewhere")
        #expect(elsewhere.process.terminationStatus == 1)
        #expect(
            elsewhere.stderr.contains("1 sound is not on this machine, so not exported (bell take 1 at /")
                && !elsewhere.stderr.contains("cannot write"), "\(elsewhere.stderr)")
        let written = try FileManager.default.subpathsOfDirectory(atPath: folder.file("elsewhere"))
        #expect(written.filter { $0.hasSuffix(".wav") }.count == 3, "\(written)")
    }

    /// `--name ucs`: CatID_FXName_CreatorID_SourceID, T2 for a row's second take; a CatID
    /// not on the list refused before anything is written, with the nearest that are; the
    /// names parse back into their blocks by the convention's rules.
    @Test func ucsNamesParseBackIntoTheirBlocksAndAWrongCatIDIsRefusedWithTheNearest() async throws {
        let csv = try folder.write(
            "sheet.csv",
            """
            id,prompt,CatID,Fixed
            door,"Old wooden door creaks open slowly, in an empty hall",DOORWod,DOORWood
            sword,Sword_unsheathe fast,WEAPSwrd,WEAPSwrd

            """)
        try await Sandbox.withRunning(sandbox()) { url, _ in
            let run = try Child(
                [
                    "run", csv, "--batch", "sfx", "--takes", "2", "--base-url", url, "--wait", "--download", "sounds",
                    "--ledger", "ledger.sqlite"
                ], in: folder, environment: ["MUSICGPT_API_KEY": "k"], name: "run")
            #expect(try await run.exitStatus() == 0, "\(run.stderr)")
        }
        let ucs = ["--to", "ucs", "--name", "ucs", "--creator", "JDOE", "--source", "CASTLE"]
        let wrong = try await soundbatchExport(ucs, name: "wrong")
        #expect(wrong.process.terminationStatus == 65, "\(wrong.stderr)")
        #expect(
            wrong.stderr.contains("DOORWod (door take 1) is not a UCS CatID; did you mean DOORWood (DOORS / WOOD)?"),
            "\(wrong.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.file("ucs")))
        let noCreator = try await soundbatchExport(["--to", "ucs", "--name", "ucs"], name: "nocreator")
        #expect(noCreator.process.terminationStatus == 64 && noCreator.stderr.contains("--creator ID and --source ID"))

        let right = try await soundbatchExport(ucs + ["--category-column", "Fixed"], name: "right")
        #expect(right.process.terminationStatus == 0, "\(right.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.file("ucs"))
            .filter { $0.hasSuffix(".wav") }.sorted()
        #expect(
            names == [
                "DOORWood_Old Wooden Door Creaks_JDOE_CASTLE.wav", "DOORWood_Old Wooden Door Creaks_JDOE_CASTLE_T2.wav",
                "WEAPSwrd_Sword Unsheathe Fast_JDOE_CASTLE.wav", "WEAPSwrd_Sword Unsheathe Fast_JDOE_CASTLE_T2.wav"
            ], "\(names)")
        // By the convention: underscores part the blocks, a CatID of the list first, FXName at
        // most 25 characters, then CreatorID, SourceID and UserData.
        for name in names {
            let blocks = name.dropLast(4).split(separator: "_", omittingEmptySubsequences: false).map(String.init)
            #expect((4...5).contains(blocks.count), "\(name)")
            #expect(["DOORWood", "WEAPSwrd"].contains(blocks[0]) && blocks[1].count <= 25)
            #expect(blocks[2] == "JDOE" && blocks[3] == "CASTLE" && (blocks.count == 4 || blocks[4] == "T2"))
        }

        // The UCS fields where library tools read them: wavinfo reads iXML's USER (as
        // Soundminer writes it) and a TRACK_LIST, bext in ASCII, and RIFF INFO; so does mediainfo.
        let door = folder.file("ucs/DOORWood_Old Wooden Door Creaks_JDOE_CASTLE.wav")
        let read = try await wavinfo(door)
        let user = try #require(read["user"] as? [String: String])
        let prompt = "Old wooden door creaks open slowly, in an empty hall"  // none of DOORWood's synonyms: no KEYWORDS
        #expect(
            user == [
                "CATEGORY": "DOORS", "SUBCATEGORY": "WOOD", "CATID": "DOORWood", "CATEGORYFULL": "DOORS-WOOD",
                "FXNAME": "Old Wooden Door Creaks", "DESCRIPTION": prompt,
                "DESIGNER": "JDOE", "LIBRARY": "CASTLE", "SHOW": "sfx", "EMBEDDER": "soundbatch"
            ], "\(user)")
        let ixml = try #require(read["ixml"] as? [String: Any])
        #expect((ixml["track_list"] as? [[String: Any]])?.count == 1 && ixml["scene"] as? String == "door")
        #expect(
            (read["bext"] as? [String: Any])?["description"] as? String
                == "Old wooden door creaks open slowly, in an empty hall")
        #expect((read["info"] as? [String: Any])?["genre"] as? String == "DOORS-WOOD")
        let media = try await program(["mediainfo", "--Output=XML", door])
        for field in [
            "<Title>Old Wooden Door Creaks</Title>", "<Genre>DOORS-WOOD</Genre>", "<Director>JDOE</Director>",
            "<Description>Old wooden door creaks open slowly, in an empty hall</Description>"
        ] {
            #expect(media.stdout.contains(field), "mediainfo: \(field) in \(media.stdout)")
        }
        // The same fields in FLAC, as metaflac reads them.
        let flac = try await soundbatchExport(
            ucs + ["--category-column", "Fixed", "--format", "flac", "--to", "ucsflac"], name: "flac")
        #expect(flac.process.terminationStatus == 0, "\(flac.stderr)")
        let comments = try await vorbisComments(
            folder.file("ucsflac/WEAPSwrd_Sword Unsheathe Fast_JDOE_CASTLE_T2.flac"))
        for comment in [
            "CATEGORY=WEAPONS", "SUBCATEGORY=SWORD", "CATID=WEAPSwrd", "CATEGORYFULL=WEAPONS-SWORD",
            "FXNAME=Sword Unsheathe Fast", "KEYWORDS=sword", "DESIGNER=JDOE", "LIBRARY=CASTLE", "SHOW=sfx",
            "DESCRIPTION=Sword_unsheathe fast"
        ] {
            #expect(comments.contains(comment), "\(comment) in \(comments)")
        }

        // Rows without a CatID of the list get proposals in the manifest, never in names.
        let suggested = try await soundbatchExport(["--to", "proposed", "--suggest-category"], name: "suggest")
        #expect(suggested.process.terminationStatus == 0, "\(suggested.stderr)")
        #expect(suggested.stdout.contains("CatIDs proposed for 2 sounds"), "\(suggested.stdout)")
        let manifest = String(
            decoding: try Data(contentsOf: URL(fileURLWithPath: folder.file("proposed/manifest.csv"))).dropFirst(3),
            as: UTF8.self)
        let lines = manifest.split(separator: "\r\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(lines[0].suffix(3) == ["suggested_catid", "suggested_because", "suggested_also"], "\(lines[0])")
        let doorLines = lines.filter { $0[1] == "door" }
        // "Old wooden door creaks open": DOORS / CREAK, from its words "door" and "creaks".
        #expect(doorLines.count == 2 && doorLines.allSatisfy { $0[$0.count - 3] == "DOORCreak" }, "\(manifest)")
        #expect(
            lines.filter { $0[1] == "sword" }.allSatisfy { $0.suffix(3).allSatisfy(\.isEmpty) },
            "its CatID is on the list")
        #expect(
            Set(try FileManager.default.contentsOfDirectory(atPath: folder.file("proposed"))).contains("door_1.wav"))
    }

    @Test func aTemplateNamingNoColumnOfTheSheetIsRefusedWithTheColumnsThereAre() async throws {
        let csv = try folder.write("sheet.csv", "id,prompt,Category\na,one,X\n")
        #expect(
            try await soundbatch(
                ["run", csv, "--batch", "sfx", "--dry-run", "--ledger", "ledger.sqlite"], in: folder.path
            )
            .status == 0)
        let wrong = try await soundbatch(
            ["export", "--batch", "sfx", "--to", "lib", "--name", "{Categry}/{id}", "--ledger", "ledger.sqlite"],
            in: folder.path)
        #expect(wrong.status == 64)
        #expect(wrong.stderr.contains("{Categry}") && wrong.stderr.contains("(Category)"), "\(wrong.stderr)")
        let unclosed = try await soundbatch(
            ["export", "--batch", "sfx", "--to", "lib", "--name", "{id", "--ledger", "ledger.sqlite"], in: folder.path)
        #expect(unclosed.status == 64 && unclosed.stderr.contains("never closes"), "\(unclosed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.file("lib")))
        // A library folder that cannot be made (inside a file, here: the tests run as root, whom
        // permissions do not stop): said in words, exit 73, as sysexits has it.
        let inFile = try await soundbatch(
            ["export", "--batch", "sfx", "--to", "ledger.sqlite/lib", "--ledger", "ledger.sqlite"], in: folder.path)
        #expect(inFile.status == 73, "\(inFile.stderr)")
        #expect(
            inFile.stderr.contains(
                "cannot make the library's folder \(folder.file("ledger.sqlite/lib")): Not a directory; choose another with --to"
            ),
            "\(inFile.stderr)")
    }
}
