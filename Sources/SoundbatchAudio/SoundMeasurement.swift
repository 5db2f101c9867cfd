import CEbur128
import Foundation

/// What one pass over a sound's decoded samples says of it: its waveform (for the review),
/// EBU R128 loudness and loudness range, sample and true peak (libebur128), what passes full
/// scale, its DC offset, silence at its ends and inside, and a fingerprint that tells the
/// same sound again. The numbers the findings of a check are made from (`Finding`).
public struct SoundMeasurement: Sendable, Equatable, Codable {
    public var seconds: Double
    /// The loudest sample of each of 400 equal stretches, 0 to 255.
    public var peaks: [UInt8]
    /// Integrated loudness, LUFS; nil when nothing passes the -70 LUFS gate.
    public var integrated: Double?
    /// Loudness range, LU.
    public var loudnessRange: Double?
    /// The highest sample and true (4x oversampled) peak of any channel, dBFS and dBTP; nil
    /// for digital silence.
    public var samplePeak: Double?
    public var truePeak: Double?
    /// Decoded samples beyond full scale: how a sound driven into clipping comes out of MP3.
    public var overs: Int
    /// Runs of three or more samples in a row at full scale (within 0.1 dB): flat tops.
    public var flatRuns: Int
    /// The largest channel's mean, dBFS; nil when it is exactly zero.
    public var dcOffset: Double?
    /// Seconds of silence (under `silence`, dBFS, in 10 ms windows) at the start, at the end,
    /// and the longest stretch of it inside.
    public var leadingSilence: Double
    public var trailingSilence: Double
    public var longestGap: Double
    /// Each tenth of a second, two bytes: its level, in half decibels above -100 dBFS, and
    /// how often its first channel crosses zero (at most 255), which tells pitches apart
    /// where levels alone do not (two strikes of one envelope in different notes).
    public var fingerprint: [UInt8]

    /// The fingerprint as the ledger keeps it: base64.
    public var fingerprintText: String { Data(fingerprint).base64EncodedString() }

    public static func fingerprint(fromText text: String) -> [UInt8] {
        Data(base64Encoded: text).map(Array.init) ?? []
    }

    /// Whether two fingerprints are of the same sound: as long (within a tenth of a second or
    /// 2%), their levels on average within `decibels` of each other, and their zero crossings
    /// within 0.5% (a quarter of a crossing a tenth at least): the same file decoded twice
    /// differs in neither, two notes a hertz apart do.
    public static func sameSound(_ a: [UInt8], _ b: [UInt8], within decibels: Double) -> Bool {
        let tenths = (a.count / 2, b.count / 2)
        guard tenths.0 > 0, tenths.1 > 0, abs(tenths.0 - tenths.1) <= max(1, max(tenths.0, tenths.1) / 50) else {
            return false
        }
        let overlap = min(tenths.0, tenths.1)
        var levelsApart = 0
        var crossingsApart = 0
        var crossings = 0
        for tenth in 0..<overlap {
            levelsApart += abs(Int(a[2 * tenth]) - Int(b[2 * tenth]))
            crossingsApart += abs(Int(a[2 * tenth + 1]) - Int(b[2 * tenth + 1]))
            crossings += Int(a[2 * tenth + 1])
        }
        let count = Double(overlap)
        return Double(levelsApart) / count / 2 <= decibels
            && Double(crossingsApart) / count <= max(0.25, 0.005 * Double(crossings) / count)
    }
}

extension SoundFile {
    /// Measures the sound in one pass; `silence` is the level, dBFS, under which a 10 ms window
    /// is silent. A file cut short (fewer frames than its header declares) is no measure of the
    /// sound: it throws, saying so.
    public func measure(silence: Double = -60) throws(AudioError) -> SoundMeasurement {
        try checkWhole()
        let mode = Int32(EBUR128_MODE_I.rawValue | EBUR128_MODE_LRA.rawValue | EBUR128_MODE_SAMPLE_PEAK.rawValue)
        var state: UnsafeMutablePointer<ebur128_state>? = ebur128_init(UInt32(channels), UInt(sampleRate), mode)
        guard state != nil else {
            throw AudioError("libebur128 cannot measure \(channels) channels at \(sampleRate) Hz")
        }
        defer { ebur128_destroy(&state) }
        var pass = MeasuringPass(
            channels: channels, frames: frames, sampleRate: sampleRate, silence: Float(pow(10, silence / 20)))
        var meter = TruePeakMeter(channels: channels)
        var failed: Int32 = 0
        forEachChunk { samples, count in
            if failed == 0 {
                failed = ebur128_add_frames_float(state, samples.baseAddress, count)
            }
            pass.take(samples, frames: count)
            meter.take(samples, frames: count)
        }
        guard failed == EBUR128_SUCCESS.rawValue else { throw AudioError("libebur128 failed (\(failed))") }
        // MP3 declares its length in its first frame (LAME's Xing header): a file cut short
        // decodes to less.
        guard pass.frame >= frames else {
            let decoded = String(format: "%.2f", Double(pass.frame) / Double(sampleRate))
            throw AudioError("cut short: \(decoded) s of the \(String(format: "%.2f", seconds)) s its header declares")
        }
        var integrated = 0.0
        ebur128_loudness_global(state, &integrated)
        var range = 0.0
        let hasRange = ebur128_loudness_range(state, &range) == EBUR128_SUCCESS.rawValue
        var samplePeak = 0.0
        for channel in 0..<UInt32(channels) {
            var value = 0.0
            ebur128_sample_peak(state, channel, &value)
            samplePeak = max(samplePeak, value)
        }
        let truePeak = Double(meter.peak)
        func decibels(_ value: Double) -> Double? { value > 0 ? 20 * log10(value) : nil }
        return pass.measurement(
            seconds: seconds, integrated: integrated.isFinite ? integrated : nil,
            loudnessRange: hasRange && range.isFinite ? range : nil, samplePeak: decibels(samplePeak),
            truePeak: decibels(truePeak))
    }
}

extension SoundFile {
    /// Throws when the file is a RIFF file (WAV) that holds fewer bytes than its header says.
    func checkWhole() throws(AudioError) {
        guard let declared = Self.riffBytesDeclared(path),
            let held = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, held < declared
        else { return }
        throw AudioError("cut short: \(held) bytes of the \(declared) its header declares")
    }

    /// The bytes a RIFF file (WAV) says it holds, when it says (0 and 0xFFFFFFFF are what a
    /// writer that did not know puts there); libsndfile reads a file cut short as if it
    /// were whole, only shorter.
    static func riffBytesDeclared(_ path: String) -> Int? {
        guard let file = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? file.close() }
        guard let head = try? file.read(upToCount: 12), head.count == 12,
            head.prefix(4) == Data("RIFF".utf8), head.suffix(4) == Data("WAVE".utf8)
        else { return nil }
        let size = head[4..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        return size == 0 || size == 0xFFFF_FFFF ? nil : size + 8
    }
}

/// What one pass keeps of the samples as they go by, a chunk at a time.
private struct MeasuringPass {
    let channels: Int
    let frames: Int
    /// A 10 ms window, and a fingerprint's tenth of a second, in frames.
    let window: Int
    let tenth: Int
    let silence: Float
    var frame = 0
    var inWindow = 0
    var inTenth = 0
    /// The waveform's point this frame falls in, and the first frame of the next.
    var point = 0
    var nextPoint = 0
    var peaks = [Float](repeating: 0, count: 400)
    var overs = 0
    var flatRuns = 0
    var flatRun = 0
    var sums: [Double]
    /// The loudest sample of each 10 ms window, and the energy of each tenth of a second.
    var windowPeaks: [Float] = []
    var windowPeak: Float = 0
    var tenthEnergy: [Double] = []
    var energy = 0.0
    var tenthCrossings: [Int] = []
    var crossings = 0
    var lastSign = false

    init(channels: Int, frames: Int, sampleRate: Int, silence: Float) {
        self.channels = channels
        self.frames = frames
        self.silence = silence
        window = max(sampleRate / 100, 1)
        tenth = max(sampleRate / 10, 1)
        sums = [Double](repeating: 0, count: channels)
        nextPoint = Self.firstFrame(ofPoint: 1, of: peaks.count, frames: frames)
    }

    /// The first frame whose waveform point (`frame * points / frames`) is `point`.
    static func firstFrame(ofPoint point: Int, of points: Int, frames: Int) -> Int {
        frames > 0 ? (point * frames + points - 1) / points : Int.max
    }

    mutating func take(_ samples: UnsafeBufferPointer<Float>, frames count: Int) {
        for index in 0..<count {
            var loudest: Float = 0
            var square = 0.0
            let first = samples[index * channels]
            if (first < 0) != lastSign, first != 0 {
                crossings += 1
                lastSign = first < 0
            }
            for channel in 0..<channels {
                let value = samples[index * channels + channel]
                let size = abs(value)
                loudest = max(loudest, size)
                square += Double(value * value)
                sums[channel] += Double(value)
                if size > 1 { overs += 1 }
            }
            // Flat tops: three samples in a row at full scale, within 0.1 dB.
            if loudest >= 0.9886 {
                flatRun += 1
                if flatRun == 3 { flatRuns += 1 }
            } else {
                flatRun = 0
            }
            // Frames counted, not divided each time: the pass is on every sample.
            while frame >= nextPoint, point < peaks.count - 1 {
                point += 1
                nextPoint = Self.firstFrame(ofPoint: point + 1, of: peaks.count, frames: frames)
            }
            peaks[point] = max(peaks[point], loudest)
            windowPeak = max(windowPeak, loudest)
            energy += square / Double(channels)
            frame += 1
            inWindow += 1
            inTenth += 1
            if inWindow == window {
                inWindow = 0
                windowPeaks.append(windowPeak)
                windowPeak = 0
            }
            if inTenth == tenth {
                inTenth = 0
                tenthEnergy.append(energy / Double(tenth))
                tenthCrossings.append(crossings)
                energy = 0
                crossings = 0
            }
        }
    }

    func measurement(
        seconds: Double, integrated: Double?, loudnessRange: Double?, samplePeak: Double?, truePeak: Double?
    ) -> SoundMeasurement {
        let windows = frame % window == 0 ? windowPeaks : windowPeaks + [windowPeak]
        let silent = windows.map { $0 < silence }
        let leading = silent.prefix { $0 }.count
        let trailing = leading == silent.count ? 0 : silent.reversed().prefix { $0 }.count
        var longest = 0
        var run = 0
        for isSilent in silent.dropFirst(leading).dropLast(trailing) {
            run = isSilent ? run + 1 : 0
            longest = max(longest, run)
        }
        let windowSeconds = Double(window) / (seconds > 0 ? Double(frames) / seconds : 1)
        let mean = sums.map { abs($0) / Double(max(frame, 1)) }.max() ?? 0
        let partial = frame % tenth != 0
        let energies = partial ? tenthEnergy + [energy / Double(frame % tenth)] : tenthEnergy
        let crossingCounts = partial ? tenthCrossings + [crossings * tenth / (frame % tenth)] : tenthCrossings
        return SoundMeasurement(
            seconds: seconds, peaks: peaks.map { UInt8((min($0, 1) * 255).rounded()) }, integrated: integrated,
            loudnessRange: loudnessRange, samplePeak: samplePeak, truePeak: truePeak, overs: overs,
            flatRuns: flatRuns, dcOffset: mean > 0 ? 20 * log10(mean) : nil,
            leadingSilence: Double(leading) * windowSeconds, trailingSilence: Double(trailing) * windowSeconds,
            longestGap: Double(longest) * windowSeconds,
            fingerprint: zip(energies, crossingCounts).flatMap { energy, crossings in
                let level = energy > 0 ? 10 * log10(energy) : -100
                return [UInt8((min(max(level, -100), 27.5) + 100) * 2), UInt8(min(crossings, 255))]
            })
    }
}
