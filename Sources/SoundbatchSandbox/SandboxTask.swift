import Foundation

/// A task as the sandbox keeps it.
public struct SandboxTask: Sendable, Codable, Equatable {
    public var taskID: String
    public var conversionID: String
    public var prompt: String
    public var audioLength: Int?
    public var webhookURL: String?
    public var creditEstimate: Double
    public var conversionCost: Double
    public var eta: Int
    public var willFail: Bool
    public var createdAt: Date
    /// When its generation ends (nil in state files written before it was kept).
    public var finishesAt: Date?
    /// Which of the keys given asked for it ("key 1", ...; "any" for another), for benchmarks.
    public var key: String?
    /// What is wrong with its sound on purpose (`--defects`), and, for a duplicate, the
    /// earlier task of the same prompt whose sound it is.
    public var defect: SandboxConfiguration.Defect?
    public var soundOf: String?

    enum CodingKeys: String, CodingKey {
        case prompt, eta, key, defect
        case soundOf = "sound_of"
        case taskID = "task_id"
        case conversionID = "conversion_id"
        case audioLength = "audio_length"
        case webhookURL = "webhook_url"
        case creditEstimate = "credit_estimate"
        case conversionCost = "conversion_cost"
        case willFail = "will_fail"
        case createdAt = "created_at"
        case finishesAt = "finishes_at"
    }

    /// How long it has run by `now`, and whether it has finished.
    func finished(by now: Date) -> Bool { now >= finishesAt ?? createdAt }
}
