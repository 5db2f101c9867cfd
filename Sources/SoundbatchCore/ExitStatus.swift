/// How a command ends, as scripts read it (the README's table of exit codes).
public enum ExitStatus: Int32, Sendable {
    case done = 0
    /// Finished, but some jobs failed for good.
    case someFailed = 1
    /// Stopped early; the batch can carry on.
    case resumable = 2
    /// A bad option, a missing file, ledger or key, an unknown batch, the ledger busy.
    case usage = 64
    /// The input file is invalid, nothing was recorded; or the ledger holds what this
    /// soundbatch cannot read (a state it does not know), nothing was changed.
    case invalidInput = 65
    /// soundbatch met an error of its own making (sysexits' EX_SOFTWARE): a fault to report.
    case internalError = 70
    /// An output file or folder cannot be made (sysexits' EX_CANTCREAT).
    case cannotCreate = 73
    /// The ledger cannot be opened or written.
    case ledgerUnusable = 74
    /// The API key was rejected.
    case keyRejected = 77
}

/// An error that ends a command: it says what went wrong (its description, to print as it
/// is) and how the command ends, as an HTTP error carries its status.
public protocol CommandError: Error, CustomStringConvertible {
    var exitStatus: ExitStatus { get }
}

extension LedgerError: CommandError {
    public var exitStatus: ExitStatus {
        switch self {
        case .noSuchBatch, .missing, .busy: .usage
        case .unknownState: .invalidInput
        case .cannotOpen, .fromTheFuture, .notPending, .noSuchJob, .vanished, .failed: .ledgerUnusable
        }
    }
}

extension IngestError: CommandError {
    public var exitStatus: ExitStatus { .invalidInput }
}

/// Opening the file failed (reading errors are inside `IngestError`).
extension CSVError: CommandError {
    public var exitStatus: ExitStatus { .usage }
}

extension LedgerCopyError: CommandError {
    public var exitStatus: ExitStatus { .ledgerUnusable }
}

extension BatchRunError: CommandError {
    public var exitStatus: ExitStatus { .usage }
}

/// Only setting the downloads up ends a command: a failed download is counted, not thrown.
extension DownloadError: CommandError {
    public var exitStatus: ExitStatus { .usage }
}

/// A file the command was to write (a report, a take's file moved aside).
extension FileError: CommandError {
    public var exitStatus: ExitStatus { .usage }
}

extension ReportError: CommandError {
    public var exitStatus: ExitStatus { .ledgerUnusable }
}

extension RunReport {
    /// How the command ends: as the run did (`RunOutcome`).
    public var exitStatus: ExitStatus { outcome.exitStatus }
}

extension RunOutcome {
    /// How a run that ended so ends its command.
    public var exitStatus: ExitStatus {
        switch self {
        case .done: .done
        case .someFailed: .someFailed
        case .resumable: .resumable
        case .keyRejected: .keyRejected
        }
    }
}
