import ArgumentParser
import Foundation
import SoundbatchCore

/// The thresholds a check holds each sound to: `check`, and the runs that save sounds. Each
/// one not given is what the batch was checked with before, else its default.
struct CheckOptions: ParsableArguments {
    private static let defaults = CheckSettings()

    // Unconditional: the values are negative, and would otherwise be read as options.
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Silent: integrated loudness under this, LUFS (default: \(ReportNumber.plain(defaults.silentBelow))).",
            valueName: "lufs"))
    var silentBelow: Double?

    @Option(
        help: ArgumentHelp(
            "Clipped: at least this many samples past full scale, or flat tops (default: \(defaults.clippedSamples)).",
            valueName: "n"))
    var clippedSamples: Int?

    @Option(
        help: ArgumentHelp(
            "Short: under this share of the length the row asked for (default: \(ReportNumber.plain(defaults.shortBelow)), half).",
            valueName: "share"))
    var shortBelow: Double?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "DC offset: a channel's mean at or over this, dBFS (default: \(ReportNumber.plain(defaults.dcOffsetAbove))).",
            valueName: "dbfs"))
    var dcOffsetAbove: Double?

    @Option(
        help: ArgumentHelp(
            "Gap: a silence inside at least this long, seconds (default: \(ReportNumber.plain(defaults.gapOver))).",
            valueName: "seconds"))
    var gapOver: Double?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "What counts as silence, dBFS, in 10 ms windows (default: \(ReportNumber.plain(defaults.silence))).",
            valueName: "dbfs"))
    var silenceThreshold: Double?

    @Option(
        help: ArgumentHelp(
            "Duplicate: levels within this of another take's of the row, on average, dB, and the same pitch "
                + "(default: \(ReportNumber.plain(defaults.duplicateWithin))).",
            valueName: "db"))
    var duplicateWithin: Double?

    func validate() throws {
        if let clippedSamples, clippedSamples < 1 { throw ValidationError("--clipped-samples must be 1 or more.") }
        if let shortBelow, !(0...1).contains(shortBelow) {
            throw ValidationError("--short-below is a share of the length asked, from 0 to 1 (0.5: half).")
        }
        if let gapOver, !(gapOver > 0) { throw ValidationError("--gap-over must be more than 0 seconds.") }
        if let duplicateWithin, !(duplicateWithin >= 0) {
            throw ValidationError("--duplicate-within must be 0 or more.")
        }
        for (name, value) in [
            ("--silent-below", silentBelow), ("--dc-offset-above", dcOffsetAbove),
            ("--silence-threshold", silenceThreshold)
        ] {
            if let value, !(value < 0) { throw ValidationError("\(name) is a level under 0, such as -60.") }
        }
    }

    var given: CheckChoices {
        var choices = CheckChoices()
        choices.silentBelow = silentBelow
        choices.clippedSamples = clippedSamples
        choices.shortBelow = shortBelow
        choices.dcOffsetAbove = dcOffsetAbove
        choices.gapOver = gapOver
        choices.silence = silenceThreshold
        choices.duplicateWithin = duplicateWithin
        return choices
    }
}

/// Findings named on the command line: `--flagged` alone for any, or `--flagged clipped,short`.
struct FindingsArgument: ExpressibleByArgument, Sendable {
    var kinds: Set<Finding>
    /// Names that are no finding at all.
    var unknown: [String]

    static let any = FindingsArgument(kinds: [], unknown: [])

    init(kinds: Set<Finding>, unknown: [String]) {
        self.kinds = kinds
        self.unknown = unknown
    }

    init(argument: String) {
        let names = argument.split(separator: ",").map { String($0).trimmed.lowercased() }.filter { !$0.isEmpty }
        kinds = Set(names.compactMap(Finding.init(rawValue:)))
        unknown = names.filter { Finding(rawValue: $0) == nil }
    }

    var defaultValueDescription: String { "any" }

    func check(_ option: String) throws {
        if let wrong = unknown.first {
            throw ValidationError(
                "\(option): \"\(wrong)\" is not one of \(Finding.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
    }
}

/// Findings counted, as a person reads them: "2 clipped, 1 silent".
func findingsText(_ findings: [Finding: Int]) -> String {
    findings.sorted { $0.key < $1.key }.map { "\(grouped($0.value)) \($0.key.words)" }.joined(separator: ", ")
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a batch's saved sounds and say which are broken: silent, clipped, short, duplicated.",
        discussion: """
            Runs save and check each sound as it lands; this checks those saved before, or \
            without checks (--no-check), and all of them again after a threshold changes. \
            Each sound is measured once: integrated loudness and loudness range (EBU R128), \
            sample and true peak, samples past full scale, DC offset, silence at its ends and \
            inside, its length against the length its row asked for, and a fingerprint that \
            finds a take that is the same sound as another take of its row. What is found \
            goes into the ledger, on the review page (F jumps to the next flagged sound), into \
            `status` and `report --jobs`, and keeps the sound out of `export`.

            Findings: silent, clipped, short, dc_offset, duplicate, gap (a long silence \
            inside) and unreadable (the file cannot be decoded). The thresholds given are \
            kept with the batch: its later runs and checks hold sounds to them.

            Safe to stop and repeat: only sounds not checked with these thresholds are \
            measured, as many at once as the machine has cores (--all: every one).

            Examples:
              soundbatch check --batch jobs
              soundbatch check --batch jobs --clipped-samples 10 --gap-over 3
              soundbatch retry --batch jobs --flagged clipped,silent
            """)

    @Option(help: "The batch whose sounds to check.")
    var batch: String

    @Flag(help: "Check every saved sound again, not only those not checked with these thresholds.")
    var all = false

    @OptionGroup(title: "Thresholds") var thresholds: CheckOptions

    @OptionGroup var ledger: LedgerOption
    @OptionGroup var log: LogOptions

    func run() async throws {
        log.bootstrap()
        let status = try await reportingErrors { () async throws -> ExitStatus in
            try await ledger.withOpen(create: false) { ledger in
                let onTerminal = isatty(STDERR_FILENO) == 1 && !log.quiet
                let outcome = try await BatchCheck(ledger: ledger, batch: batch, stop: Interrupts.stop).run(
                    thresholds.given, all: all
                ) { done, total in
                    if onTerminal { LiveLine.shared.show("checking: \(done)/\(total)") }
                }
                if onTerminal { LiveLine.shared.clear() }
                let findings = try await ledger.findingCounts(batch: batch)[batch]?.findings ?? [:]
                if !log.quiet {
                    print(
                        "\(batch): \(counted(outcome.checked, "sound", "sounds")) checked now, "
                            + "\(grouped(outcome.upToDate)) checked already with these thresholds")
                    print(
                        findings.isEmpty
                            ? "  nothing found wrong"
                            : "  found: \(findingsText(findings)); listen: soundbatch review --batch \(batch); "
                                + "send them again: soundbatch retry --batch \(batch) --flagged")
                }
                if !outcome.missing.isEmpty {
                    let some = outcome.missing.prefix(5).map {
                        "\($0.row) take \($0.take) (\($0.sound.path ?? $0.sound.savedAs ?? ""))"
                    }
                    printError(
                        "\(counted(outcome.missing.count, "sound is", "sounds are")) not where the ledger says, so not "
                            + "checked: \(some.joined(separator: ", "))\(outcome.missing.count > 5 ? " and \(outcome.missing.count - 5) more" : ""); "
                            + "fetch them again with: soundbatch track --batch \(batch) --download DIR")
                }
                if outcome.interrupted {
                    printError("stopped before every sound was checked; the same command carries on")
                    return .resumable
                }
                return .done
            }
        }
        if status != .done { throw ExitCode(status) }
    }
}
