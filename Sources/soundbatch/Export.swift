import ArgumentParser
import Foundation
import SoundbatchAudio
import SoundbatchCore

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Write a batch's sounds as a library: named from the sheet, even in loudness, tagged, with a manifest.",
        discussion: """
            Takes the batch's kept sounds (from `review` or `mark`) when it has any verdict, \
            else every completed sound; --only says otherwise. Each is decoded (WAV, FLAC, Ogg \
            or MP3, whatever the service sent), made as asked, and written atomically as \
            Broadcast WAV at 48 kHz unless --sample-rate says otherwise (the prompt in bext's \
            Description, in ASCII, and whole in iXML; the task ID as \
            OriginatorReference, the row's columns in an iXML chunk) or FLAC (Vorbis comments). \
            DIR/manifest.csv is the sheet written back: a line a file, with what it cost and \
            what was measured.

            Names come from --name: fields in braces, {id} {row} {line} {take} {prompt} \
            {batch} {task}, or any of the sheet's columns, such as {Category}/{id}_{take}; a \
            slash in the template makes a folder. --name ucs names files as the Universal \
            Category System (v8.2.1) has them, CatID_FXName_CreatorID_SourceID, with T2, T3 \
            for a row's later takes: the CatID from the sheet (a CatID or Category column, or \
            --category-column), refused unless it is on the list, with the nearest that are; \
            the FXName from --fxname-column or the prompt; the UCS fields go in iXML's USER \
            (FLAC: Vorbis comments) as Soundminer and Reaper read them. --suggest-category \
            proposes CatIDs for rows without one, from their prompts and the list's synonyms, \
            in the manifest's suggested_catid column: put those you accept in the sheet's \
            CatID column and feed it again. Names are made safe on Windows, macOS and Linux; \
            two sounds given one name get a suffix (-2), said in the output.

            Loudness (--loudness) is integrated loudness, EBU R128 / ITU-R BS.1770, measured \
            with libebur128; no true peak goes over --peak: a sound the target would push over \
            it is turned up less, never clipped, and the output names it.

            A sound a check found wrong (silent, clipped, short: `soundbatch status` counts \
            them) is left out, and the output names it, unless --include-flagged; the \
            manifest's findings column says what was found.

            Safe to repeat: a file already right is left as it is; one soundbatch wrote with \
            other settings is replaced; one it did not write is never replaced without \
            --force. An export stopped halfway carries on where it stopped.

            Examples:
              soundbatch export --batch jobs --to library
              soundbatch export --batch jobs --to library --loudness -16 --bits 24
              soundbatch export --batch jobs --to lib --name "{Category}/{id}_{take}"
              soundbatch export --batch jobs --to lib --suggest-category
              soundbatch export --batch jobs --to lib --name ucs --creator JDOE --source CASTLE
              soundbatch export --batch jobs --to lib --format flac --sample-rate 44100
              soundbatch export --batch jobs --to lib --only unrejected --trim-silence
            """)

    @Option(help: "The batch to export.")
    var batch: String

    @Option(name: .customLong("to"), help: ArgumentHelp("The library's folder (made if needed).", valueName: "dir"))
    var folder: String

    @Option(
        help: ArgumentHelp("Which sounds (default: kept when the batch has verdicts, else all).", valueName: "which"))
    var only: LibraryExport.Choice?

    @Option(
        help: ArgumentHelp(
            "How files are named (default: {id}_{take}); ucs for the Universal Category System's names.",
            valueName: "template"))
    var name: String?

    @Option(help: ArgumentHelp("With --name ucs: the CreatorID block, who made the sounds.", valueName: "id"))
    var creator: String?

    @Option(help: ArgumentHelp("With --name ucs: the SourceID block, the library or project.", valueName: "id"))
    var source: String?

    @Option(
        help: ArgumentHelp(
            "With --name ucs or --suggest-category: the sheet's column of CatIDs (default: CatID, else Category).",
            valueName: "column"))
    var categoryColumn: String?

    @Option(
        name: .customLong("fxname-column"),
        help: ArgumentHelp(
            "With --name ucs: the sheet's column of FXNames (default: made from the prompt).", valueName: "column"))
    var fxNameColumn: String?

    @Flag(help: "Propose UCS CatIDs for rows without one, in the manifest (never in names).")
    var suggestCategory = false

    @Flag(help: "Names in ASCII only: accents dropped (é to e), other letters replaced.")
    var ascii = false

    @Option(help: "Broadcast WAV or FLAC.")
    var format: SoundFormat.Container = .wav

    @Option(
        help: ArgumentHelp(
            "Frames a second, such as 44100, or source for each sound's own (the service sends 22050 or 44100).",
            valueName: "hz"))
    var sampleRate: SampleRateChoice = .rate(48000)

    @Option(help: "Bits a sample: 16 (with dither) or 24.")
    var bits = 24

    // Unconditional: the values are negative, and would otherwise be read as options.
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Bring each sound to this integrated loudness, LUFS, such as -16 or -23 (default: left as it is).",
            valueName: "lufs"))
    var loudness: Double?

    @Option(
        parsing: .unconditional, help: ArgumentHelp("The true-peak ceiling, dBTP, with --loudness.", valueName: "dbtp"))
    var peak = -1.0

    @Flag(help: "Trim leading and trailing silence (below --silence-threshold), with a 5 ms fade.")
    var trimSilence = false

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("What counts as silence for --trim-silence, dBFS.", valueName: "dbfs"))
    var silenceThreshold = -60.0

    @Flag(help: "Replace files in the way that soundbatch did not write.")
    var force = false

    @Flag(help: "Export the sounds a check found wrong too (default: left out, and named).")
    var includeFlagged = false

    @Option(help: ArgumentHelp("Sounds made at once (default: the machine's cores).", valueName: "n"))
    var concurrency: Int?

    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    func validate() throws {
        do { try export().check() } catch let error as LibrarySettingError { throw ValidationError("\(error).") }
    }

    /// The export the options ask for.
    func export() throws -> LibraryExport {
        var export = LibraryExport(batch: batch, folder: URL(fileURLWithPath: folder).standardizedFileURL.path)
        if name?.lowercased() == "ucs" {
            guard let creator, let source else {
                throw ValidationError(
                    "--name ucs needs --creator ID and --source ID: the blocks of a UCS name that say who made the "
                        + "sounds and for which library or project.")
            }
            for (option, value) in [("--creator", creator), ("--source", source)]
            where value.isEmpty || value.contains { "_/\\".contains($0) } {
                throw ValidationError("\(option) \"\(value)\" must be one block of a UCS name: no _, / or \\.")
            }
            export.ucs = UCSNaming(creator: creator, source: source, fxNameColumn: fxNameColumn)
        } else if let name {
            do { export.template = try NameTemplate(name) } catch { throw ValidationError("\(error).") }
        }
        if export.ucs == nil, creator ?? source ?? fxNameColumn != nil {
            throw ValidationError("--creator, --source and --fxname-column go with --name ucs.")
        }
        if export.ucs == nil, !suggestCategory, categoryColumn != nil {
            throw ValidationError("--category-column goes with --name ucs or --suggest-category.")
        }
        export.suggestCategories = suggestCategory
        export.categoryColumn = categoryColumn
        export.ascii = ascii
        export.only = only
        export.rendering.format = SoundFormat(container: format, bits: bits)
        export.rendering.sampleRate = sampleRate.hertz
        export.rendering.loudness = loudness
        export.rendering.peakCeiling = peak
        export.rendering.trimBelow = trimSilence ? silenceThreshold : nil
        export.force = force
        export.includeFlagged = includeFlagged
        if let concurrency { export.concurrency = concurrency }
        return export
    }

    func run() async throws {
        log.bootstrap()
        let status = try await reportingErrors { () async throws -> ExitStatus in
            try await ledger.withOpen(create: false) { ledger in
                let export = try export()
                let plan = try await export.plan(ledger)
                if !log.quiet { print(describe(plan, export: export)) }
                let onTerminal = isatty(STDERR_FILENO) == 1 && !log.quiet
                let report = try await export.run(plan, stop: Interrupts.stop) { done, total in
                    if onTerminal { LiveLine.shared.show("exporting: \(done)/\(total)") }
                }
                if onTerminal { LiveLine.shared.clear() }
                summarize(report, export: export)
                return report.exitStatus
            }
        }
        if status != .done { throw ExitCode(status) }
    }

    /// What will be exported, and how.
    func describe(_ plan: LibraryPlan, export: LibraryExport) -> String {
        let which =
            switch plan.choice {
            case .kept: "the \(counted(plan.sounds.count + plan.withoutFile.count, "kept sound", "kept sounds"))"
            case .unrejected: "\(counted(plan.sounds.count + plan.withoutFile.count, "sound", "sounds")) not rejected"
            case .all: counted(plan.sounds.count + plan.withoutFile.count, "sound", "sounds")
            }
        var why = "of \(grouped(plan.completed)) completed"
        if plan.chosenByDefault {
            why +=
                plan.choice == .kept
                ? "; the batch has verdicts, and --only all takes every sound" : "; no verdicts yet"
        }
        let rendering = export.rendering
        var how = "\(rendering.format.bits)-bit \(rendering.format.container == .wav ? "Broadcast WAV" : "FLAC")"
        how += rendering.sampleRate.map { " at \($0) Hz" } ?? " at each sound's own rate"
        if let lufs = rendering.loudness {
            how +=
                ", \(ReportNumber.plain(lufs)) LUFS with true peaks under \(ReportNumber.plain(rendering.peakCeiling)) dBTP"
        }
        if let below = rendering.trimBelow { how += ", silence under \(ReportNumber.plain(below)) dBFS trimmed" }
        return "\(batch): exporting \(which) (\(why)) to \(export.folder) as \(how)"
    }

    /// What the export did.
    func summarize(_ report: LibraryReport, export: LibraryExport) {
        let plan = report.plan
        if !log.quiet {
            print(
                "\(batch): \(counted(report.written, "file", "files")) written, \(grouped(report.alreadyRight)) already right"
                    + (report.notReached == 0 ? "; \(export.folder)/manifest.csv lists them" : ""))
        }
        func some(_ files: [String]) -> String {
            files.prefix(5).joined(separator: ", ") + (files.count > 5 ? " and \(files.count - 5) more" : "")
        }
        if !report.converted.isEmpty, let rate = export.rendering.sampleRate, !log.quiet {
            let from = report.converted.sorted { $0.key < $1.key }.map { "\(grouped($0.value)) from \($0.key) Hz" }
            print(
                "  converted to \(rate) Hz: \(from.joined(separator: ", ")) (--sample-rate source keeps each sound's own)"
            )
        }
        if !report.heldByCeiling.isEmpty, !log.quiet {
            print(
                "  \(counted(report.heldByCeiling.count, "sound was", "sounds were")) turned up less than the loudness target, "
                    + "to keep true peaks under \(ReportNumber.plain(export.rendering.peakCeiling)) dBTP: \(some(report.heldByCeiling))"
            )
        }
        if plan.suggesting, !log.quiet, report.notReached == 0 {
            print(
                plan.suggestedFor == 0
                    ? "  no CatIDs to propose: every sound's row has one of the UCS list, or no word of the list"
                    : "  CatIDs proposed for \(counted(plan.suggestedFor, "sound", "sounds")) in the manifest's "
                        + "suggested_catid column: put those you accept in the sheet's CatID column and feed it again")
        }
        if !plan.suffixed.isEmpty, !log.quiet {
            print(
                "  \(counted(plan.suffixed.count, "name was", "names were")) taken already, and got a suffix: \(some(plan.suffixed))"
            )
        }
        if !plan.withoutFile.isEmpty {
            printError(
                "\(counted(plan.withoutFile.count, "sound was", "sounds were")) never saved, so not exported ("
                    + some(plan.withoutFile.map { "\($0.row) take \($0.take)" })
                    + "); fetch them with: soundbatch track --batch \(batch) --download DIR")
        }
        if !plan.flagged.isEmpty {
            printError(
                "\(counted(plan.flagged.count, "sound was", "sounds were")) left out, as a check found them wrong ("
                    + some(plan.flagged.map { "\($0.row) take \($0.take): \(Finding.text($0.findings))" })
                    + "); export them with --include-flagged, or send them again: soundbatch retry --batch \(batch) --flagged"
            )
        }
        if !report.leftAlone.isEmpty {
            printError(
                "\(counted(report.leftAlone.count, "file", "files")) left as they are: soundbatch did not write them, or they "
                    + "changed since (\(some(report.leftAlone))); move them, or replace them with --force")
        }
        if !plan.notHere.isEmpty {
            printError(
                "\(counted(plan.notHere.count, "sound is", "sounds are")) not on this machine, so not exported ("
                    + some(plan.notHere.map { "\($0.row) take \($0.take) at \($0.source ?? "")" })
                    + (plan.store == nil
                        ? "): saved on another, or moved or deleted since; fetch them here with: "
                            + "soundbatch track --batch \(batch) --download DIR"
                        : "), nor kept in the ledger (saved before it kept sounds); on the machine that saved them, "
                            + "soundbatch track --batch \(batch) --download DIR puts them in the ledger for the team"))
        }
        for (file, reason) in report.failed.prefix(10) { printError("could not export \(file): \(reason)") }
        if report.failed.count > 10 { printError("\(report.failed.count - 10) more could not be exported") }
        if report.notReached > 0 {
            printError(
                "stopped with \(counted(report.notReached, "sound", "sounds")) not exported; the same command carries on"
            )
        }
    }
}

extension LibraryExport.Choice: ExpressibleByArgument {}

/// `--sample-rate`: frames a second, or each sound's own.
enum SampleRateChoice: ExpressibleByArgument, CustomStringConvertible {
    case source
    case rate(Int)

    init?(argument: String) {
        if argument.lowercased() == "source" {
            self = .source
        } else if let rate = Int(argument) {
            self = .rate(rate)
        } else {
            return nil
        }
    }

    var hertz: Int? {
        if case let .rate(rate) = self { rate } else { nil }
    }

    var description: String { hertz.map(String.init) ?? "source" }
}
extension SoundFormat.Container: ExpressibleByArgument {
    /// What a library is written as (MP3 is only what the sandbox sends).
    public static var allValueStrings: [String] { ["wav", "flac"] }
}

/// Numbers as a person writes them: -16, -1.5.
enum ReportNumber {
    static func plain(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }
}
