import Foundation

/// `soundbatch check`: a batch's saved sounds measured and held to its thresholds, those
/// saved before checks were, or unmeasured (`--no-check`), or checked with other thresholds
/// (or every one, `all`). As many at once as there are cores; each check is kept as it is
/// made, so that a check stopped carries on where it stopped.
public struct BatchCheck: Sendable {
    public var ledger: any LedgerStore
    public var batch: String
    public var stop: StopSignal
    /// Sounds measured at once.
    public var concurrency = ProcessInfo.processInfo.activeProcessorCount

    public init(ledger: any LedgerStore, batch: String, stop: StopSignal) {
        self.ledger = ledger
        self.batch = batch
        self.stop = stop
    }

    /// What a check did.
    public struct Outcome: Sendable, Equatable {
        /// Sounds measured now, and the batch's saved takes checked already with these thresholds.
        public var checked = 0
        public var upToDate = 0
        /// Takes whose file is neither on this machine nor kept in the ledger: left unchecked.
        public var missing: [CheckTarget] = []
        public var interrupted = false
    }

    /// Checks the batch's sounds with the thresholds it remembers, `given`'s put over them and
    /// kept for its next runs; `progress` hears how many of how many are checked.
    public func run(
        _ given: CheckChoices, all: Bool = false, progress: (@Sendable (_ done: Int, _ of: Int) -> Void)? = nil
    ) async throws -> Outcome {
        let batchID = try await ledger.batchID(named: batch)
        var remembered = try await ledger.settings(ofBatch: batchID) ?? BatchSettings()
        let choices = (remembered.checks ?? CheckChoices()).overridden(by: given)
        if choices != (remembered.checks ?? CheckChoices()) {
            remembered.checks = choices
            try await ledger.recordSettings(remembered, ofBatch: batchID)
        }
        let settings = choices.settings
        let saved = try await ledger.checkTargets(batchID: batchID, .all)
        let due = all ? saved : try await ledger.checkTargets(batchID: batchID, .due(settings))
        var outcome = Outcome(upToDate: saved.count - due.count)
        var here: [CheckTarget] = []
        for target in due {
            if target.sound.pathHere != nil || target.sound.kept {
                here.append(target)
            } else {
                outcome.missing.append(target)
            }
        }
        try await SoundFiles.with(store: ledger.soundStore) { files in
            try await withThrowingTaskGroup(of: Void.self) { group in
                var next = here.makeIterator()
                func startNext() -> Bool {
                    guard !stop.isStopped, let target = next.next() else { return false }
                    group.addTask { [ledger] in
                        // A sound another machine saved is read from the ledger, once for its check.
                        let check = try await files.withFile(target.sound) {
                            TakeCheck.of($0, settings: settings, askedSeconds: target.askedSeconds)
                        }
                        try await ledger.recordCheck(
                            check, settings: settings, jobID: target.jobID, take: target.take,
                            sha256: target.sound.sha256, now: Date())
                    }
                    return true
                }
                for _ in 0..<max(1, concurrency) where !startNext() { break }
                while try await group.next() != nil {
                    outcome.checked += 1
                    progress?(outcome.checked, here.count)
                    _ = startNext()
                }
            }
        }
        outcome.interrupted = stop.isStopped && outcome.checked < here.count
        return outcome
    }
}
