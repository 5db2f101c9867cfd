public enum LedgerError: Error, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case missing(path: String)
    case fromTheFuture(path: String)
    case noSuchBatch(String, known: [String])
    case busy(path: String, holder: String)
    /// The job moved on (another sender has it); it is not this one's to send.
    case notPending(jobID: Int64)
    /// The job is no longer in the ledger.
    case noSuchJob(jobID: Int64)
    case vanished(path: String)
    /// A read or write failed; the unfinished change was rolled back.
    case failed(reason: String)
    /// A job (named as a person finds its row) is in a state this soundbatch does not know.
    case unknownState(row: String, state: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            "cannot open the ledger \(path): \(reason)"
        case let .missing(path):
            "there is no ledger at \(path); feed one with `soundbatch run FILE.csv`, "
                + "or point at yours with --ledger or SOUNDBATCH_LEDGER"
        case let .fromTheFuture(path):
            "the ledger \(path) was written by a newer soundbatch; upgrade soundbatch to use it (nothing was changed)"
        case let .busy(path, holder):
            "another soundbatch (\(holder)) is running on the ledger \(path); wait for it to finish, or stop it first"
        case let .vanished(path):
            "the ledger \(path) was deleted or replaced while soundbatch was running; "
                + "stopped sending so that nothing is paid for without a record"
        case let .failed(reason):
            "the ledger failed: \(reason)"
        case let .unknownState(row, state):
            "the job \(row) is in the state \"\(state)\", which this soundbatch does not know: the ledger was "
                + "written by a newer soundbatch (upgrade this one), or changed by hand (set the state back); "
                + "nothing was changed"
        case .notPending:
            "a job was no longer pending when this soundbatch went to send it; is another one working on this ledger?"
        case .noSuchJob:
            "a job this soundbatch was following is no longer in the ledger; was it removed while this ran?"
        case let .noSuchBatch(name, known):
            known.isEmpty
                ? "no batch named \"\(name)\": the ledger holds no batches yet"
                : "no batch named \"\(name)\"; the ledger holds: \(known.joined(separator: ", "))"
        }
    }
}
