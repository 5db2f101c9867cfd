import SoundbatchAudio

/// A library's settings outside what a sound editor would use.
public struct LibrarySettingError: CommandError, Equatable {
    public var description: String
    public var exitStatus: ExitStatus { .usage }
}

extension LibraryExport {
    /// Refuses settings outside what a library is made with, naming the first one and its range.
    public func check() throws {
        func refuse(_ text: String) -> LibrarySettingError { LibrarySettingError(description: text) }
        guard rendering.format.container != .mp3 else { throw refuse("a library is written as WAV or FLAC, not MP3") }
        guard [16, 24].contains(rendering.format.bits) else { throw refuse("a library's samples are 16 or 24 bits") }
        if let rate = rendering.sampleRate, !(8000...192_000).contains(rate) {
            throw refuse("the sample rate must be from 8000 to 192000 Hz")
        }
        if let loudness = rendering.loudness, !(-70...0).contains(loudness) {
            throw refuse("the loudness must be from -70 to 0 LUFS")
        }
        guard (-20...0).contains(rendering.peakCeiling) else {
            throw refuse("the true-peak ceiling must be from -20 to 0 dBTP")
        }
        if let below = rendering.trimBelow, !(-120 ... -10).contains(below) {
            throw refuse("the silence threshold must be from -120 to -10 dBFS")
        }
        guard (1...64).contains(concurrency) else { throw refuse("from 1 to 64 sounds may be made at once") }
    }
}

extension LibraryReport {
    /// How the export ends: resumable when it was stopped first; some failed when a file could
    /// not be written, was left alone, or a sound was never saved; else done.
    public var exitStatus: ExitStatus {
        if notReached > 0 { return .resumable }
        return failed.isEmpty && leftAlone.isEmpty && plan.withoutFile.isEmpty && plan.notHere.isEmpty
            ? .done : .someFailed
    }
}
