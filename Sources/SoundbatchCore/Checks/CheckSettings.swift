import Foundation

/// The thresholds a check holds a sound to: what a sound editor would choose, each an
/// option of `check`, `run`, `resume` and `track` (the README lists them).
public struct CheckSettings: Sendable, Equatable, Codable {
    /// Silent: integrated loudness under this, LUFS (or none measurable at all).
    public var silentBelow = -60.0
    /// Clipped: this many decoded samples beyond full scale, or flat tops, at least.
    public var clippedSamples = 3
    /// Short: under this share of the length the row asked for.
    public var shortBelow = 0.5
    /// DC offset: a channel's mean at or over this, dBFS.
    public var dcOffsetAbove = -40.0
    /// Gap: a silence inside at least this long, seconds.
    public var gapOver = 1.5
    /// What counts as silence, dBFS (in 10 ms windows): for the ends and the gaps.
    public var silence = -60.0
    /// Duplicate: levels within this of an earlier take's, on average, dB (and its pitch the same).
    public var duplicateWithin = 1.0

    public init() {}

    /// As the ledger keeps them with each check: a check again with others measures again.
    public var text: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// The thresholds a command line (or a batch's memory of earlier ones) chose, each its own:
/// `--gap-over 3` leaves the other thresholds as the batch was checked before.
public struct CheckChoices: Sendable, Equatable, Codable {
    public var silentBelow: Double?
    public var clippedSamples: Int?
    public var shortBelow: Double?
    public var dcOffsetAbove: Double?
    public var gapOver: Double?
    public var silence: Double?
    public var duplicateWithin: Double?

    public init() {}

    /// These choices, with `newer`'s where it makes one.
    public func overridden(by newer: CheckChoices) -> CheckChoices {
        var merged = self
        merged.silentBelow = newer.silentBelow ?? silentBelow
        merged.clippedSamples = newer.clippedSamples ?? clippedSamples
        merged.shortBelow = newer.shortBelow ?? shortBelow
        merged.dcOffsetAbove = newer.dcOffsetAbove ?? dcOffsetAbove
        merged.gapOver = newer.gapOver ?? gapOver
        merged.silence = newer.silence ?? silence
        merged.duplicateWithin = newer.duplicateWithin ?? duplicateWithin
        return merged
    }

    /// The settings they make: the defaults, but for what they choose.
    public var settings: CheckSettings {
        var settings = CheckSettings()
        settings.silentBelow = silentBelow ?? settings.silentBelow
        settings.clippedSamples = clippedSamples ?? settings.clippedSamples
        settings.shortBelow = shortBelow ?? settings.shortBelow
        settings.dcOffsetAbove = dcOffsetAbove ?? settings.dcOffsetAbove
        settings.gapOver = gapOver ?? settings.gapOver
        settings.silence = silence ?? settings.silence
        settings.duplicateWithin = duplicateWithin ?? settings.duplicateWithin
        return settings
    }
}
