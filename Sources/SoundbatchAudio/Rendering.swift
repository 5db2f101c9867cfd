import Foundation

/// How a library's files are made from the sounds the service sent.
public struct Rendering: Sendable, Hashable, Codable {
    public var format = SoundFormat()
    /// Frames a second; nil keeps the sound's own.
    public var sampleRate: Int?
    /// The integrated loudness to bring each sound to, LUFS; nil leaves the level alone.
    public var loudness: Double?
    /// No true peak above this, dBTP: a sound the loudness target would push over it is
    /// turned up less (it is never clipped or limited).
    public var peakCeiling = -1.0
    /// Trim leading and trailing silence below this level, dBFS; nil keeps it.
    public var trimBelow: Double?

    public init() {}
}

/// What rendering one sound did.
public struct Rendered: Sendable, Equatable, Codable {
    /// Measured on the sound going in (trimmed and resampled as asked), and on what is written.
    public var before: Loudness
    public var after: Loudness
    /// Gain applied, dB.
    public var gain: Double
    /// The peak ceiling held the gain below what the loudness target asked.
    public var heldByCeiling: Bool
    /// The sound was under the trimming threshold throughout, and kept whole.
    public var silent: Bool
    public var seconds: Double
    /// The sound's own frames a second, before any resampling (nil in records of older exports).
    public var sourceRate: Int?
}

extension Rendering {
    /// Reads `source`, makes it as these settings say and writes it, with `tags`, to `destination`.
    public func render(_ source: String, to destination: String, tags: SoundTags) throws -> Rendered {
        var sound = try SoundFile(reading: source).read()
        var silent = false
        if let trimBelow {
            if let trimmed = sound.trimmed(below: trimBelow) { sound = trimmed } else { silent = true }
        }
        let sourceRate = sound.sampleRate
        if let sampleRate, sampleRate != sound.sampleRate { sound = try sound.resampled(to: sampleRate) }
        let before = try sound.loudness()
        var gain = 0.0
        var held = false
        if let loudness, let integrated = before.integrated {
            gain = loudness - integrated
            if let peak = before.truePeak, peak + gain > peakCeiling {
                gain = peakCeiling - peak
                held = true
            }
            sound.amplify(by: gain)
        }
        let after = try sound.loudness()
        var tags = tags
        tags.loudness = after
        try sound.write(to: destination, as: format, tags: tags)
        return Rendered(
            before: before, after: after, gain: gain, heldByCeiling: held, silent: silent, seconds: sound.seconds,
            sourceRate: sourceRate)
    }
}
