/// Why a verdict was not given.
public enum MarkError: CommandError, Equatable {
    case noSuchTake(row: String, take: Int, takes: [Int])
    case notASound(row: String, take: Int, state: JobState)
    /// The row has several takes, and none was named: each, with what it is.
    case whichTake(row: String, takes: [String])

    public var description: String {
        switch self {
        case let .noSuchTake(row, take, takes):
            "\(row) has no take \(take) (it has \(takes.map(String.init).joined(separator: ", ")))"
        case let .notASound(row, take, state):
            "\(row) take \(take) is \(state.words), not a sound: there is nothing to keep or reject"
        case let .whichTake(row, takes):
            "\(row) has \(takes.count) takes: \(takes.joined(separator: ", ")); say which with --take N"
        }
    }

    public var exitStatus: ExitStatus { .usage }
}

extension LedgerStore {
    /// Gives `verdict` (nil: clears it) to take `take` of the row `row` names (needed when the
    /// row has several: none is picked for the person); returns the take it went to.
    public func mark(_ verdict: Verdict?, row: String, batch: String, take: Int? = nil) async throws -> Int {
        let named = try await namedRow(row, batch: batch)
        let takes = named.takes
        if take == nil, takes.count > 1 {
            throw MarkError.whichTake(
                row: row,
                takes: takes.sorted { $0.take.take < $1.take.take }.map { _, take in
                    "\(take.take) (\(take.verdict?.rawValue ?? (take.state == .completed ? "not reviewed" : take.state.words)))"
                })
        }
        let chosen = take ?? takes.map(\.take.take).max() ?? 1
        guard let job = takes.first(where: { $0.take.take == chosen })?.job else {
            throw MarkError.noSuchTake(row: row, take: chosen, takes: takes.map(\.take.take).sorted())
        }
        switch try await setVerdict(verdict, jobID: job, take: chosen) {
        case .recorded: return chosen
        case .noSuchTake: throw MarkError.noSuchTake(row: row, take: chosen, takes: takes.map(\.take.take).sorted())
        case let .notASound(state): throw MarkError.notASound(row: row, take: chosen, state: state)
        }
    }
}

extension LedgerStore {
    /// Rejects the latest sound of each of the batch's jobs that a check found one of `kinds`
    /// in (any, when empty); returns how many.
    public func rejectFlagged(batch: String, kinds: Set<Finding>) async throws -> Int {
        let batchID = try await batchID(named: batch)
        var rejected = 0
        for job in try await retryCandidates(batchID: batchID, states: [.completed]) where job.isFlagged(kinds) {
            if case .recorded = try await setVerdict(.rejected, jobID: job.id, take: job.take) { rejected += 1 }
        }
        return rejected
    }
}
