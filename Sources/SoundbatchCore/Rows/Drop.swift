/// What `drop` would do: the jobs it may remove (never sent), and those it keeps because the
/// service may hold a task of them.
public struct DropPlan: Sendable, Equatable {
    public var batchID: Int64
    public var going: [DropCandidate]
    public var kept: [DropCandidate]
}

/// Rows asked for by name that are none of the jobs a drop may take.
public struct DropRowsNotFound: CommandError, Equatable {
    public var batch: String
    public var states: Set<JobState>
    public var lastFeed: Bool
    public var rows: [String]

    public var description: String {
        "no \(states.map(\.rawValue).sorted().joined(separator: " or ")) job of batch \"\(batch)\""
            + (lastFeed ? " from its latest feed" : "") + " has the id or CSV line " + rows.joined(separator: ", ")
            + "; nothing removed"
    }

    public var exitStatus: ExitStatus { .usage }
}

extension LedgerStore {
    /// The jobs of `batch` in `states` (of its latest feed only with `lastFeed`; only the rows
    /// `rows` names, when it names any) that a drop takes, and keeps.
    public func planDrop(batch: String, states: Set<JobState>, rows: [String], lastFeed: Bool) async throws -> DropPlan
    {
        let batchID = try await batchID(named: batch)
        var candidates = try await dropCandidates(batchID: batchID, states: states, lastFeed: lastFeed)
        if !rows.isEmpty {
            var named = Set<Int64>()
            var unknown: [String] = []
            for row in rows {
                let ids = Set(try await jobIDs(batchID: batchID, row: row))
                if candidates.contains(where: { ids.contains($0.id) }) {
                    named.formUnion(ids)
                } else {
                    unknown.append(row)
                }
            }
            guard unknown.isEmpty else {
                throw DropRowsNotFound(batch: batch, states: states, lastFeed: lastFeed, rows: unknown)
            }
            candidates = candidates.filter { named.contains($0.id) }
        }
        return DropPlan(
            batchID: batchID, going: candidates.filter(\.neverSent), kept: candidates.filter { !$0.neverSent })
    }
}
