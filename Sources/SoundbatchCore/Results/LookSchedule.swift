/// When to look at a task, learned from the batch as it goes.
///
/// The service rarely says how long a generation takes (its eta is documented as -1), but
/// within a batch generations take alike: the tasks seen finishing teach it. The first
/// look comes at the age by which a share `step` of tasks had finished; each later one at
/// the age by which another `step` had. So looks come often where many tasks finish, and
/// seldom where few do, about 1/(2 step) + 1/2 of them per task.
/// An eta the service gives is taken as its word for the first look. Until the batch has
/// taught enough, a cautious prior holds. And a look budget left idle buys nothing: while
/// few tasks share it (the end of a batch), each is looked at at least every two fair
/// shares of it, or a twentieth of its age when that is longer (a task stuck for long is
/// not worth a look a second).
///
/// Ages are seconds since submission.
public struct LookSchedule: Sendable {
    /// Before the batch has taught anything: a generation's likely time, for the time left
    /// (the service's own are "tens of seconds")...
    public var priorGeneration = 30.0
    /// ...the first look at this age...
    public var priorFirstLook = 10.0
    /// ...then one each `priorGap`, or a quarter of the task's age when that is longer.
    public var priorGap = 5.0
    /// Two looks at a task are never closer than this...
    public var minGap = 1.0
    /// ...nor further apart than this while it is younger than tasks seen to finish...
    public var likelyGap = 6.0
    /// ...nor than this when it is older than all of them (a quarter of its age until then).
    public var maxGap = 60.0
    /// The share of all tasks that finish between two looks.
    public var step = 0.25
    /// Completions seen before the batch's times are trusted (for one audio length, or all).
    public var minSamples = 5
    /// The most recent completions kept.
    public var memory = 200

    private var all = Durations()
    private var byLength: [Int: Durations] = [:]

    public init() {}

    /// Takes in a task seen completed at age `seenAt`, last seen running at `runningAt`:
    /// it finished between the two, and the middle is the best guess.
    public mutating func learn(seenAt: Double, runningAt: Double?, audioLength: Int?) {
        let seconds = ((runningAt ?? 0) + seenAt) / 2
        all.add(seconds, keeping: memory)
        if let audioLength { byLength[audioLength, default: Durations()].add(seconds, keeping: memory) }
    }

    /// How many completions the schedule has learned from.
    public var learned: Int { all.count }

    /// The age of a task's first look.
    public func firstLook(eta: Int?, audioLength: Int?) -> Double {
        if let eta, eta >= 0 { return Double(eta) }
        guard let seen = durations(for: audioLength) else { return priorFirstLook }
        return max(minGap, seen.quantile(step))
    }

    /// The age of the next look at a task found running at age `age`. `fairShare` is the
    /// time between looks each task followed would get if the look budget were shared evenly.
    public func nextLook(after age: Double, audioLength: Int?, fairShare: Double = .infinity) -> Double {
        age + max(minGap, min(gap(after: age, audioLength: audioLength), max(2 * fairShare, age / 20)))
    }

    private func gap(after age: Double, audioLength: Int?) -> Double {
        guard let seen = durations(for: audioLength) else { return min(maxGap, max(priorGap, age / 4)) }
        let done = seen.share(atMost: age)
        guard done < 1 else { return min(maxGap, max(minGap, age / 4)) }
        return min(likelyGap, max(minGap, seen.quantile(done + step) - age))
    }

    /// How likely a task found running at age `runningAt` (or not yet looked at) has
    /// finished by age `age`: what ranks looks when there are more due than the budget allows.
    /// Where the batch has taught nothing (untaught, or past every time seen), a guess that
    /// is `step` when the look is due and grows while it waits, up to one half.
    public func chance(finishedBy age: Double, runningAt: Double?, eta: Int?, audioLength: Int?) -> Double {
        if runningAt == nil, let eta, eta >= 0 { return age >= Double(eta) ? 0.9 : 0 }
        let since = runningAt ?? 0
        if let seen = durations(for: audioLength), case let before = seen.share(atMost: since), before < 1 {
            return (seen.share(atMost: age) - before) / (1 - before)
        }
        let gap = runningAt.map { nextLook(after: $0, audioLength: audioLength) - $0 } ?? priorFirstLook
        return min(0.5, step * (age - since) / max(gap, minGap))
    }

    /// The age by which a task will have finished with a chance `quantile`, from the batch's
    /// times: one found running at age `runningAt` finishes later than that. An eta the
    /// service gives is its word until the task outlives it. Past every time seen (or the
    /// prior, before the batch has taught any), the first of that time's steps of a quarter
    /// more that the task has not reached: a guess that holds, and so counts down, until
    /// the task outlives it.
    public func likelyFinish(runningAt: Double?, eta: Int?, audioLength: Int?, quantile: Double) -> Double {
        let since = runningAt ?? 0
        if let eta, eta >= 0, Double(eta) > since { return Double(eta) }
        func beyond(_ longest: Double) -> Double {
            var guess = max(longest, minGap)
            while guess <= since { guess *= 1.25 }
            return guess
        }
        guard let seen = durations(for: audioLength) else { return beyond(priorGeneration) }
        let before = seen.share(atMost: since)
        guard before < 1 else { return beyond(seen.quantile(1) * 1.25) }
        return max(since, seen.quantile(before + quantile * (1 - before)))
    }

    private func durations(for audioLength: Int?) -> Durations? {
        if let audioLength, let own = byLength[audioLength], own.count >= minSamples { return own }
        return all.count >= minSamples ? all : nil
    }
}

/// The most recent durations, kept both in arrival order (to forget the oldest) and sorted.
struct Durations: Sendable {
    private var arrival: [Double] = []
    private(set) var sorted: [Double] = []

    var count: Int { sorted.count }

    mutating func add(_ value: Double, keeping limit: Int) {
        arrival.append(value)
        sorted.insert(value, at: index(after: value))
        if arrival.count > limit {
            let oldest = arrival.removeFirst()
            sorted.remove(at: index(after: oldest) - 1)
        }
    }

    /// The value with a share `p` of the durations at or below it.
    func quantile(_ p: Double) -> Double {
        sorted[min(count - 1, max(0, Int((p * Double(count)).rounded(.up)) - 1))]
    }

    func share(atMost value: Double) -> Double { Double(index(after: value)) / Double(count) }

    /// The index of the first duration greater than `value`.
    private func index(after value: Double) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] <= value { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
