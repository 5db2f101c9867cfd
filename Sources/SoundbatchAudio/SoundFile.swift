import CSndFile
import Foundation

/// A sound file as libsndfile reads it: WAV, FLAC, Ogg and MP3 alike, whatever the service
/// sent. The one place that decodes audio.
public final class SoundFile {
    private let handle: OpaquePointer
    public let path: String
    /// Frames (one sample per channel), channels and frames a second.
    public let frames: Int
    public let channels: Int
    public let sampleRate: Int

    public init(reading path: String) throws(SoundFileError) {
        var info = SF_INFO()
        guard let handle = sf_open(path, Int32(SFM_READ), &info) else {
            throw SoundFileError(path: path, reason: String(cString: sf_strerror(nil)))
        }
        self.handle = handle
        self.path = path
        frames = Int(info.frames)
        channels = Int(info.channels)
        sampleRate = Int(info.samplerate)
        guard channels > 0, sampleRate > 0 else {
            sf_close(handle)
            throw SoundFileError(path: path, reason: "no channels or no sample rate")
        }
    }

    deinit { sf_close(handle) }

    public var seconds: Double { Double(frames) / Double(sampleRate) }

    /// Calls `body` with each stretch of up to `chunk` frames, interleaved, as floats from -1 to 1.
    public func forEachChunk(
        of chunk: Int = 8192, _ body: (UnsafeBufferPointer<Float>, _ frames: Int) throws -> Void
    )
        rethrows
    {
        var buffer = [Float](repeating: 0, count: chunk * channels)
        sf_seek(handle, 0, SEEK_SET)
        while true {
            let read = buffer.withUnsafeMutableBufferPointer {
                Int(sf_readf_float(handle, $0.baseAddress, sf_count_t(chunk)))
            }
            if read <= 0 { return }
            try buffer.withUnsafeBufferPointer {
                try body(UnsafeBufferPointer(rebasing: $0[0..<(read * channels)]), read)
            }
        }
    }

    /// The loudest sample of each of `points` equal stretches of the sound, 0 to 255: what a
    /// waveform is drawn from.
    public func peaks(_ points: Int = 400) -> [UInt8] {
        guard frames > 0, points > 0 else { return [] }
        var peaks = [Float](repeating: 0, count: points)
        var frame = 0
        forEachChunk { samples, count in
            for index in 0..<count {
                var loudest: Float = 0
                for channel in 0..<channels { loudest = max(loudest, abs(samples[index * channels + channel])) }
                let point = min(points - 1, frame * points / frames)
                peaks[point] = max(peaks[point], loudest)
                frame += 1
            }
        }
        return peaks.map { UInt8((min($0, 1) * 255).rounded()) }
    }
}

/// A sound file that could not be read.
public struct SoundFileError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String

    public var description: String { "cannot read the sound \(path): \(reason)" }
}
