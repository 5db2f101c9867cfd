import Foundation

/// What the tracker knows of the tasks still generating, for the time left: when each was
/// sent, the age a look last found it running at, the service's eta, and the generation
/// times the batch has taught (`LookSchedule`). It changes only with news: a task taken in,
/// a look, a completion.
public struct GenerationOutlook: Sendable {
    var schedule: LookSchedule
    private(set) var tasks: [Int64: Generating] = [:]

    struct Generating: Sendable {
        var submittedAt: Date
        var runningAt: Double?
        var eta: Int?
        var audioLength: Int?
    }

    init(schedule: LookSchedule) { self.schedule = schedule }

    /// Tasks still generating.
    public var count: Int { tasks.count }

    mutating func taken(_ job: TrackedJob) {
        tasks[job.id] = Generating(submittedAt: job.submittedAt, eta: job.eta, audioLength: job.audioLength)
    }

    mutating func seenRunning(_ jobID: Int64, atAge age: Double) { tasks[jobID]?.runningAt = age }

    mutating func ended(_ jobID: Int64) { tasks[jobID] = nil }

    /// When the last of them will likely have finished, each at `quantile` of the batch's
    /// times given what the looks found; nil when none is generating.
    public func likelyEnd(quantile: Double) -> Date? {
        tasks.values.map { task in
            task.submittedAt.addingTimeInterval(
                schedule.likelyFinish(
                    runningAt: task.runningAt, eta: task.eta, audioLength: task.audioLength, quantile: quantile))
        }.max()
    }

    /// How long a task sent now will likely take, at `quantile`.
    public func likelyGeneration(quantile: Double) -> Double {
        schedule.likelyFinish(runningAt: nil, eta: nil, audioLength: nil, quantile: quantile)
    }
}
