import Foundation
import SoundbatchAudio
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

    /// What a command printed on standard error (ffmpeg writes its measurements there).
    func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let error = Pipe()
        process.standardError = error
        process.standardOutput = error
        try process.run()
        let text = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }

    /// Integrated loudness and true peak as ffmpeg's `ebur128=peak=true` says them.
    func ffmpegLoudness(_ path: String) throws -> (integrated: Double, truePeak: Double) {
        let text = try run([
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
    func loudnessAndTruePeakAgreeWithFFmpeg(_ amplitude: Float) throws {
        let path = try write(tone(seconds: 3, amplitude: amplitude), "tone-\(amplitude).wav")
        let ours = try SoundFile(reading: path).read().loudness()
        let theirs = try ffmpegLoudness(path)
        let integrated = try #require(ours.integrated)
        let truePeak = try #require(ours.truePeak)
        #expect(abs(integrated - theirs.integrated) <= 0.3, "\(integrated) LUFS against ffmpeg's \(theirs.integrated)")
        #expect(abs(truePeak - theirs.truePeak) <= 0.3, "\(truePeak) dBTP against ffmpeg's \(theirs.truePeak)")
    }

    @Test func aWrittenFileIsWhatWasAskedAndReadsBackTheSame() throws {
        let sound = tone(seconds: 1, amplitude: 0.5, rate: 22_050)
        let wav = try write(sound, "tone.wav", as: SoundFormat(container: .wav, bits: 24))
        let flac = try write(sound, "tone.flac", as: SoundFormat(container: .flac, bits: 16))
        func probe(_ path: String) throws -> String {
            try run([
                "ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels,bits_per_raw_sample",
                "-of", "csv=p=0", path
            ]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try probe(wav) == "pcm_s24le,22050,2,24")
        #expect(try probe(flac) == "flac,22050,2,16")
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
}
