import ArgumentParser
import Foundation
import Logging
import Serving
import SoundbatchCore
import SoundbatchLedgers

@main
struct Soundbatch: AsyncParsableCommand {
    static func main() async {
        // First of all: no Ctrl-C may slip past before a watcher stands (`Signals`).
        Signals.hold()
        // A file size limit (ulimit -f) should fail a write with a clear error, not kill us.
        signal(SIGXFSZ, SIG_IGN)
        // `help bogus` would print the general help and exit 0, as if all were well.
        let arguments = CommandLine.arguments.dropFirst()
        let names = configuration.subcommands.map { $0._commandName }
        if arguments.first == "help", let asked = arguments.dropFirst().first, !names.contains(asked) {
            printError("no command named \"\(asked)\"; the commands are \(names.joined(separator: ", "))")
            exit(withError: Exit.usage)
        }
        let interrupts = arguments.first.flatMap { Interrupts.commands[$0] }.map {
            SignalWatcher(stop: Interrupts.stop, stopping: $0.stopping, quitting: $0.quitting)
        }
        // Any other command ends on a Ctrl-C as any program does (until one watches for it).
        if interrupts == nil { Signals.release() }
        defer { interrupts?.cancel() }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: unexpected(error))
        }
    }

    /// An error that is neither the command line's own (a bad option, help, an exit code) nor
    /// one a command says (`CommandError`) is a fault of soundbatch's: said as one, and ended
    /// with its own code, never 1, which tells a script that some jobs failed.
    static func unexpected(_ error: any Error) -> any Error {
        guard !(error is ExitCode), exitCode(for: error) == .failure else { return error }
        printError("unexpected error: \(error); please report it, with the command that met it")
        return ExitCode(.internalError)
    }

    static let version = "0.4.0"

    static let configuration = CommandConfiguration(
        commandName: "soundbatch",
        abstract: "Turn a spreadsheet of prompts into sound effects with the MusicGPT Sound Generator API.",
        discussion: """
            Every row, task ID, estimate and answer is kept in a ledger (a SQLite file, or a \
            team's PostgreSQL database), so a run \
            can stop at any moment and carry on later without paying twice.

            Exit codes: 0 done; 1 finished but some jobs failed; 2 stopped early but resumable; \
            64 usage error; 65 invalid input (a file, or a ledger soundbatch cannot read); 70 an error of soundbatch's \
            own (please report it); 74 the ledger cannot be used; 77 API key rejected; 130 quit at once by a second Ctrl-C.

            Examples:
              soundbatch run jobs.csv --sandbox --wait --download sounds/   (try it: no key needed)
              soundbatch status
              soundbatch report --format html --output spend.html
            """,
        version: version,
        subcommands: [
            Run.self, Resume.self, Retry.self, Drop.self, Review.self, Check.self, Mark.self, Export.self, Adopt.self,
            Track.self,
            Status.self, Report.self, Webhook.self,
            LedgerCommand.self,
            SandboxCommand.self
        ]
    )
}

/// The exit codes scripts can rely on (documented in the README), as `ExitStatus` says them.
enum Exit {
    static let done = ExitCode(.done)
    static let someFailed = ExitCode(.someFailed)
    static let usage = ExitCode(.usage)
}

extension ExitCode {
    init(_ status: ExitStatus) { self.init(status.rawValue) }
}

struct LedgerOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The ledger: a SQLite file, or a team's postgres:// URL (default: $SOUNDBATCH_LEDGER, else ./soundbatch.sqlite).",
            valueName: "path"))
    var ledger: String?

    /// Opens the ledger for as long as `body` runs; commands that only read it pass `create: false`.
    func withOpen<T: Sendable>(create: Bool = true, _ body: (any LedgerStore) async throws -> T) async throws -> T {
        try await withLedger(at: LedgerLocation.resolve(option: ledger), create: create, body)
    }
}

struct LogOptions: ParsableArguments {
    @Option(help: "How much to log to standard error: trace, debug, info, notice, warning, error or critical.")
    var logLevel: LogLevel = .info

    @Flag(help: "Print only warnings and errors.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Say more: every file saved, every retry (the same as --log-level debug).")
    var verbose = false

    @Option(help: "text (a timestamp first, except on a terminal) or json (one object a line).")
    var logFormat: LogFormat = .text

    func bootstrap() {
        let asked = logLevel.level
        let level: Logger.Level = quiet ? max(asked, .warning) : verbose ? min(asked, .debug) : asked
        let forPeople = isatty(STDERR_FILENO) == 1
        LoggingSystem.bootstrap { [logFormat] _ in
            LogOutput(logLevel: level, format: logFormat, forPeople: forPeople)
        }
    }
}

/// A log level as the command line takes it (swift-log's own, by its name).
enum LogLevel: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error, critical

    var level: Logger.Level { Logger.Level(rawValue: rawValue)! }
}

/// Runs a command body; an error that ends the command is said on standard error, and the
/// command ends as the error says (`CommandError`).
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as any CommandError {
        printError(error.description)
        throw ExitCode(error.exitStatus)
    }
}

/// The server never listened: a usage error (the port is taken, or the address wrong).
extension CouldNotListen: CommandError {
    public var exitStatus: ExitStatus { .usage }
}

/// Asks `question` on the terminal (yes or no), unless `yes` answers it. Without a terminal
/// and without `yes`, refuses with exit 64, saying why `--yes` is wanted.
func confirmed(_ question: String, yes: Bool, because why: String) throws -> Bool {
    if yes { return true }
    guard isatty(STDIN_FILENO) == 1 else { throw CommandFailure(.usage, "\(why); add --yes to go on") }
    Swift.print("\(question) [y/N] ", terminator: "")
    fflush(nil)
    return readLine().map { ["y", "yes"].contains($0.trimmed.lowercased()) } ?? false
}

func printError(_ text: String) {
    LiveLine.shared.writeAbove(
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { "soundbatch: \($0)\n" }.joined())
}

/// A count with the word for it: "1 job", "2 jobs", "12,345 jobs".
func counted(_ number: Int, _ one: String, _ many: String) -> String {
    "\(grouped(number)) \(number == 1 ? one : many)"
}

/// 12345 -> "12,345": counts read better grouped, whatever the locale.
func grouped(_ number: Int) -> String {
    let digits = String(number.magnitude)
    var out = ""
    for (index, digit) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { out += "," }
        out.append(digit)
    }
    return number < 0 ? "-" + out : out
}
