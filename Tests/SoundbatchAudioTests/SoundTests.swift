import CEbur128
import Foundation
import SoundbatchAudio
import SoundbatchTesting
import Testing

/// The audio module on real files, checked against tools soundbatch did not write: ffmpeg's
/// `ebur128` filter for loudness and true peak, `ffprobe` for what a written file is.
@Suite struct SoundTests {
    let folder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("soundbatch-audio-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// A stereo sound: a 1 kHz tone at `amplitude`, with a quieter 150 Hz under it, and a
    /// second of silence after `seconds`.
    func tone(seconds: Double, amplitude: Float, rate: Int = 48_000) -> Sound {
        var samples: [Float] = []
        let frames = Int(seconds * Double(rate))
        for index in 0..<(frames + rate) {
            let t = Double(index) / Double(rate)
            let value =
                index < frames ? amplitude * Float(sin(2 * .pi * 1000 * t) + 0.3 * sin(2 * .pi * 150 * t)) / 1.3 : 0
            samples += [value, value * 0.8]
        }
        return Sound(samples: samples, channels: 2, sampleRate: rate)
    }

    func write(_ sound: Sound, _ name: String, as format: SoundFormat = SoundFormat()) throws -> String {
        let path = folder.appendingPathComponent(name).path
        let tags = SoundTags(
            title: "tone", description: "a test tone", take: 1, project: "tests", taskID: "t", made: nil, columns: [])
        try sound.write(to: path, as: format, tags: tags)
        return path
    }

    /// What a command printed, on standard output and error (ffmpeg writes its measurements there).
    func run(_ arguments: [String]) async throws -> String {
        let result = try await program(arguments)
        return result.stdout + result.stderr
    }

    /// Integrated loudness and true peak as ffmpeg's `ebur128=peak=true` says them.
    func ffmpegLoudness(_ path: String) async throws -> (integrated: Double, truePeak: Double) {
        let text = try await run([
            "ffmpeg", "-nostats", "-hide_banner", "-i", path, "-af", "ebur128=peak=true", "-f", "null", "-"
        ])
        let summary = try #require(text.components(separatedBy: "Summary:").last)
        func number(after label: String) throws -> Double {
            let line = try #require(summary.split(separator: "\n").first { $0.contains(label) })
            let words = line.split(separator: " ")
            return try #require(words.compactMap { Double($0) }.first)
        }
        return (try number(after: "I:"), try number(after: "Peak:"))
    }

    @Test(arguments: [0.5, 0.1])
    func loudnessAndTruePeakAgreeWithFFmpeg(_ amplitude: Float) async throws {
        let path = try write(tone(seconds: 3, amplitude: amplitude), "tone-\(amplitude).wav")
        let ours = try SoundFile(reading: path).read().loudness()
        let theirs = try await ffmpegLoudness(path)
        let integrated = try #require(ours.integrated)
        let truePeak = try #require(ours.truePeak)
        #expect(abs(integrated - theirs.integrated) <= 0.3, "\(integrated) LUFS against ffmpeg's \(theirs.integrated)")
        #expect(abs(truePeak - theirs.truePeak) <= 0.3, "\(truePeak) dBTP against ffmpeg's \(theirs.truePeak)")
    }

    /// libebur128's true peak of `sound`: every phase of every sample worked out.
    func libebur128TruePeak(_ sound: Sound) -> Double {
        var state = ebur128_init(UInt32(sound.channels), UInt(sound.sampleRate), Int32(EBUR128_MODE_TRUE_PEAK.rawValue))
        defer { ebur128_destroy(&state) }
        _ = sound.samples.withUnsafeBufferPointer { ebur128_add_frames_float(state, $0.baseAddress, sound.frames) }
        var peak = 0.0
        for channel in 0..<UInt32(sound.channels) {
            var value = 0.0
            ebur128_true_peak(state, channel, &value)
            peak = max(peak, value)
        }
        return 20 * log10(peak)
    }

    /// The true peak skips only what cannot hold it: the same as libebur128's, on sounds whose
    /// peaks fall between samples (a tone near a quarter of the rate, at a phase that puts its
    /// crests between them), on noise, on a decaying strike, on a tone cut at full scale, and
    /// in chunks of any size.
    @Test func theTruePeakIsLibebur128sWhereverThePeakFalls() throws {
        var random = SystemRandomNumberGenerator()
        func sound(_ frames: Int, rate: Int = 44_100, _ value: (Int) -> Float) -> Sound {
            Sound(samples: (0..<frames).flatMap { [value($0), value($0) * 0.7] }, channels: 2, sampleRate: rate)
        }
        let sounds = [
            sound(44_100) { 0.9 * Float(sin(2 * .pi * 11_025 * Double($0) / 44_100 + .pi / 4)) },
            sound(30_000, rate: 22_050) { _ in Float.random(in: -0.5...0.5, using: &random) },
            sound(88_200) { Float(exp(-3 * Double($0) / 44_100) * sin(2 * .pi * 7_000 * Double($0) / 44_100)) },
            sound(20_000, rate: 48_000) { min(max(2 * Float(sin(2 * .pi * 997 * Double($0) / 48_000)), -1), 1) },
            sound(10_000) { $0 == 9_990 ? 0.8 : 0.01 * Float(sin(Double($0))) }
        ]
        for sound in sounds {
            let theirs = libebur128TruePeak(sound)
            let ours = try #require(try sound.loudness().truePeak)
            #expect(abs(ours - theirs) < 0.01, "\(ours) dBTP against libebur128's \(theirs)")
            let path = try write(sound, "peaks-\(UUID().uuidString).wav", as: SoundFormat(container: .wav, bits: 24))
            let measured = try #require(try SoundFile(reading: path).measure().truePeak)
            #expect(abs(measured - theirs) < 0.01, "\(measured) dBTP, read in chunks, against \(theirs)")
        }
    }

    @Test func aWrittenFileIsWhatWasAskedAndReadsBackTheSame() async throws {
        let sound = tone(seconds: 1, amplitude: 0.5, rate: 22_050)
        let wav = try write(sound, "tone.wav", as: SoundFormat(container: .wav, bits: 24))
        let flac = try write(sound, "tone.flac", as: SoundFormat(container: .flac, bits: 16))
        func probe(_ path: String) async throws -> String {
            try await run([
                "ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels,bits_per_raw_sample",
                "-of", "csv=p=0", path
            ]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try await probe(wav) == "pcm_s24le,22050,2,24")
        #expect(try await probe(flac) == "flac,22050,2,16")
        for path in [wav, flac] {
            let read = try SoundFile(reading: path)
            #expect(read.frames == sound.frames && read.channels == 2 && read.sampleRate == 22_050)
            let samples = read.read().samples
            let worst = zip(samples, sound.samples).map { abs($0 - $1) }.max() ?? 1
            #expect(worst < 1.0 / 16_000, "\(path): \(worst)")  // 16 bits and dither: well under a step's few
        }
    }

    @Test func resamplingKeepsTheLengthAndTheTone() throws {
        let sound = tone(seconds: 2, amplitude: 0.5, rate: 22_050)
        let resampled = try sound.resampled(to: 48_000)
        #expect(resampled.sampleRate == 48_000 && abs(resampled.seconds - sound.seconds) < 0.01)
        let before = try #require(try sound.loudness().integrated)
        let after = try #require(try resampled.loudness().integrated)
        #expect(abs(before - after) < 0.1, "\(before) LUFS, \(after) LUFS after resampling")
    }

    @Test func silenceIsTrimmedAndAFileThatIsNoSoundIsAnError() throws {
        let sound = tone(seconds: 1, amplitude: 0.5)
        let trimmed = try #require(sound.trimmed(below: -60))
        #expect(abs(trimmed.seconds - 1) < 0.02, "\(trimmed.seconds) s left of 2 s, one of them silence")
        let notSound = folder.appendingPathComponent("not.wav").path
        try Data("RIFF, but nothing after it".utf8).write(to: URL(fileURLWithPath: notSound))
        #expect(throws: SoundFileError.self) { try SoundFile(reading: notSound) }
    }

    /// What a check measures (`SoundMeasurement`, one pass) agrees with ffmpeg on the file
    /// the service sends (MP3) and on WAV: integrated loudness and true peak within 0.3.
    @Test(arguments: [("wav", Float(0.5)), ("mp3", Float(0.5)), ("mp3", Float(0.05))])
    func aChecksMeasurementsAgreeWithFFmpeg(_ container: String, _ amplitude: Float) async throws {
        let format = SoundFormat(container: container == "mp3" ? .mp3 : .wav)
        let path = try write(tone(seconds: 3, amplitude: amplitude), "check-\(amplitude).\(container)", as: format)
        let measured = try SoundFile(reading: path).measure()
        let theirs = try await ffmpegLoudness(path)
        let integrated = try #require(measured.integrated)
        let truePeak = try #require(measured.truePeak)
        #expect(abs(integrated - theirs.integrated) <= 0.3, "\(integrated) LUFS against ffmpeg's \(theirs.integrated)")
        #expect(abs(truePeak - theirs.truePeak) <= 0.3, "\(truePeak) dBTP against ffmpeg's \(theirs.truePeak)")
        // Three seconds of tone, then one of silence; nothing past full scale, nothing off zero.
        #expect(measured.leadingSilence < 0.02)
        #expect(abs(measured.trailingSilence - 1) < 0.06, "\(measured.trailingSilence) s of silence at the end")
        #expect(measured.overs == 0 && measured.flatRuns == 0)
        #expect((measured.dcOffset ?? -200) < -60)
        #expect(measured.peaks == (try SoundFile(reading: path).peaks()), "the waveform drawn for the review page")
    }

    @Test func aSoundDrivenPastFullScaleComesOutOfMP3BeyondIt() async throws {
        let loud = tone(seconds: 2, amplitude: 1)
        let clipped = Sound(
            samples: loud.samples.map { min(max($0 * 4, -1), 1) }, channels: 2, sampleRate: loud.sampleRate)
        let path = try write(clipped, "clipped.mp3", as: SoundFormat(container: .mp3))
        let measured = try SoundFile(reading: path).measure()
        #expect(measured.overs > 100, "\(measured.overs) samples past full scale")
        #expect((measured.truePeak ?? 0) > 0.5)
        #expect((try await ffmpegLoudness(path)).truePeak > 0.5)
    }

    @Test(arguments: ["wav", "mp3"])
    func aFileCutShortIsNoMeasureOfTheSound(_ container: String) throws {
        let path = try write(
            tone(seconds: 4, amplitude: 0.5), "whole.\(container)",
            as: SoundFormat(container: container == "mp3" ? .mp3 : .wav))
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: path))
        #expect {
            try SoundFile(reading: path).measure()
        } throws: { error in
            "\(error)".hasPrefix("cut short:")
        }
    }

    @Test func theSameSoundIsTheSameAndANoteFiveHertzAwayIsNot() throws {
        func print(_ frequency: Double, _ name: String) throws -> [UInt8] {
            let rate = 16_000
            let samples = (0..<(3 * rate)).map { index -> Float in
                let t = Double(index) / Double(rate)
                return Float(0.4 * exp(-3 * t.truncatingRemainder(dividingBy: 1)) * sin(2 * .pi * frequency * t))
            }
            let path = try write(Sound(samples: samples, channels: 1, sampleRate: rate), name)
            return try SoundFile(reading: path).measure().fingerprint
        }
        let first = try print(440, "a.wav")
        #expect(SoundMeasurement.sameSound(first, try print(440, "again.wav"), within: 1))
        #expect(!SoundMeasurement.sameSound(first, try print(445, "apart.wav"), within: 1))
        #expect(!SoundMeasurement.sameSound(first, Array(first.prefix(first.count / 2)), within: 1))
    }
}
