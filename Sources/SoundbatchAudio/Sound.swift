import CEbur128
import CSampleRate
import Foundation

/// A sound in memory: interleaved samples from -1 to 1. Sound effects are short (seconds,
/// rarely minutes), so a whole one is held while it is worked on.
public struct Sound: Sendable {
    public var samples: [Float]
    public let channels: Int
    public let sampleRate: Int

    public init(samples: [Float], channels: Int, sampleRate: Int) {
        self.samples = samples
        self.channels = channels
        self.sampleRate = sampleRate
    }

    public var frames: Int { samples.count / channels }
    public var seconds: Double { Double(frames) / Double(sampleRate) }
}

extension SoundFile {
    /// The whole sound, decoded.
    public func read() -> Sound {
        var samples: [Float] = []
        samples.reserveCapacity(max(frames, 0) * channels)
        forEachChunk { chunk, _ in samples.append(contentsOf: chunk) }
        return Sound(samples: samples, channels: channels, sampleRate: sampleRate)
    }
}

/// What EBU R128 (ITU-R BS.1770) says of a sound, as libebur128 measures it.
public struct Loudness: Sendable, Hashable, Codable {
    /// Integrated loudness, LUFS; nil for a sound too quiet to measure (under the -70 LUFS gate).
    public var integrated: Double?
    /// The highest true peak of any channel, dBTP (4x oversampled); nil for digital silence.
    public var truePeak: Double?
}

/// A failure of one of the audio libraries, in its words.
public struct AudioError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Sound {
    /// Integrated loudness and true peak.
    public func loudness() throws(AudioError) -> Loudness {
        guard frames > 0 else { return Loudness() }
        let mode = Int32(EBUR128_MODE_I.rawValue)
        var state: UnsafeMutablePointer<ebur128_state>? = ebur128_init(UInt32(channels), UInt(sampleRate), mode)
        guard state != nil else {
            throw AudioError("libebur128 cannot measure \(channels) channels at \(sampleRate) Hz")
        }
        defer { ebur128_destroy(&state) }
        let added = samples.withUnsafeBufferPointer { ebur128_add_frames_float(state, $0.baseAddress, frames) }
        guard added == EBUR128_SUCCESS.rawValue else { throw AudioError("libebur128 failed (\(added))") }
        var integrated = 0.0
        ebur128_loudness_global(state, &integrated)
        var meter = TruePeakMeter(channels: channels)
        samples.withUnsafeBufferPointer { meter.take($0, frames: frames) }
        let peak = Double(meter.peak)
        return Loudness(
            integrated: integrated.isFinite ? integrated : nil, truePeak: peak > 0 ? 20 * log10(peak) : nil)
    }

    /// The sound at another sample rate (libsamplerate's medium-quality sinc converter:
    /// 97 dB signal to noise, a 90% passband).
    public func resampled(to rate: Int) throws(AudioError) -> Sound {
        guard rate != sampleRate, frames > 0 else {
            return Sound(samples: samples, channels: channels, sampleRate: rate)
        }
        let ratio = Double(rate) / Double(sampleRate)
        var output = [Float](repeating: 0, count: (Int(Double(frames) * ratio) + 64) * channels)
        let (code, written) = samples.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                var data = SRC_DATA()
                data.data_in = input.baseAddress
                data.input_frames = frames
                data.data_out = out.baseAddress
                data.output_frames = out.count / channels
                data.src_ratio = ratio
                let code = src_simple(&data, Int32(SRC_SINC_MEDIUM_QUALITY), Int32(channels))
                return (code, data.output_frames_gen)
            }
        }
        guard code == 0 else { throw AudioError("libsamplerate: \(String(cString: src_strerror(code)))") }
        output.removeLast(output.count - written * channels)
        return Sound(samples: output, channels: channels, sampleRate: rate)
    }

    /// Multiplies every sample by `decibels` of gain.
    public mutating func amplify(by decibels: Double) {
        let factor = Float(pow(10, decibels / 20))
        for index in samples.indices { samples[index] *= factor }
    }

    /// Without the silence before the first sample louder than `threshold` dBFS and after
    /// the last, and with a fade of `fade` seconds in and out so that no cut clicks; nil
    /// when the whole sound is under the threshold.
    public func trimmed(below threshold: Double, fade: Double = 0.005) -> Sound? {
        let level = Float(pow(10, threshold / 20))
        let loud = { (frame: Int) in (0..<channels).contains { abs(samples[frame * channels + $0]) > level } }
        guard let first = (0..<frames).first(where: loud), let last = (0..<frames).last(where: loud) else { return nil }
        var kept = Sound(
            samples: Array(samples[(first * channels)..<((last + 1) * channels)]), channels: channels,
            sampleRate: sampleRate)
        let fadeFrames = min(Int(fade * Double(sampleRate)), kept.frames / 2)
        for frame in 0..<fadeFrames {
            let gain = Float(frame) / Float(fadeFrames)
            for channel in 0..<channels {
                kept.samples[frame * channels + channel] *= gain
                kept.samples[(kept.frames - 1 - frame) * channels + channel] *= gain
            }
        }
        return kept
    }
}
