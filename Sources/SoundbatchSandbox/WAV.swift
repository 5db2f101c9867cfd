import Foundation
import Hummingbird
import NIOCore
import SoundbatchAudio

/// A task's sound: a tone that strikes again and again and dies away between strikes, its
/// pitch (220 to 880 Hz) and the time between strikes (0.6 to 1.4 s) from the task, so that
/// two takes of one prompt differ, as the service's do, in pitch and in rhythm. As long as
/// the task asked, unless its defect says otherwise (`SandboxConfiguration.Defect`).
struct SandboxSound: Sendable {
    static let sampleRate = 16_000

    /// One strike, to the next one's start: the sound is this again and again, made once.
    var strike: [Float]
    var frames: Int

    /// The sound of `task`: a duplicate's is the sound of the task it copies.
    init(of task: SandboxTask) {
        var hash: UInt32 = 2_166_136_261
        for byte in (task.soundOf ?? task.taskID).utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let frequency = 220 + Double(hash % 660)
        let period = 0.6 + Double(hash / 660 % 9) / 10
        let defect = task.defect
        strike = (0..<Int(period * Double(Self.sampleRate))).map { index in
            let time = Double(index) / Double(Self.sampleRate)
            let tone = 12_000.0 / 32_768 * exp(-3 * time) * sin(2 * .pi * frequency * time)
            switch defect {
            case .silent?: return 0
            // Driven eight times (18 dB) past full scale, and cut there.
            case .clipped?: return Float(min(max(tone * 8, -1), 1))
            // Off zero by -20 dBFS.
            case .dcOffset?: return Float(tone + 0.1)
            default: return Float(tone)
            }
        }
        // 10 s when it did not say; a fifth of it when it comes out short.
        let asked = Double(task.audioLength ?? 10)
        frames = Int((defect == .short ? asked / 5 : asked) * Double(Self.sampleRate))
    }

    /// The whole sound, from -1 to 1.
    var samples: [Float] { (0..<frames).map { strike[$0 % strike.count] } }
}

/// The sound as a real WAV file (16-bit mono PCM), written from its strike made once, about a
/// second at a time, so a long one never sits whole in memory.
enum WAV {
    static let headerSize = 44

    /// The file's size in bytes.
    static func size(_ sound: SandboxSound) -> Int { headerSize + sound.frames * 2 }

    static func write(_ sound: SandboxSound, to writer: inout any ResponseBodyWriter) async throws {
        try await writer.write(ByteBuffer(bytes: header(sampleCount: sound.frames)))
        var strike: [UInt8] = []
        for sample in sound.strike {
            let value = Int16(max(-32_768, min(32_767, (Double(sample) * 32_768).rounded())))
            withUnsafeBytes(of: value.littleEndian) { strike += $0 }
        }
        let chunk = ByteBuffer(bytes: Array(repeating: strike, count: max(1, 16_000 / sound.strike.count)).joined())
        var left = sound.frames * 2
        while left > 0 {
            try await writer.write(left >= chunk.readableBytes ? chunk : chunk.getSlice(at: 0, length: left)!)
            left -= chunk.readableBytes
        }
        try await writer.finish(nil)
    }

    /// The whole sound as MP3, as the real service sends its audio (LAME, through libsndfile).
    static func mp3(_ sound: SandboxSound, taskID: String) throws -> Data {
        let samples = Sound(
            samples: sound.samples, channels: 1, sampleRate: SandboxSound.sampleRate)
        let path = NSTemporaryDirectory() + "/soundbatch-sandbox-\(UUID().uuidString).mp3"
        defer { unlink(path) }
        try samples.write(
            to: path, as: SoundFormat(container: .mp3),
            tags: SoundTags(
                title: taskID, description: "", take: 1, project: "", taskID: taskID, made: nil, columns: []))
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    /// A RIFF/WAVE header for 16-bit mono PCM.
    static func header(sampleCount: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        func append(_ text: String) { bytes += Array(text.utf8) }
        func append32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        func append16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        let dataSize = UInt32(sampleCount * 2)
        append("RIFF")
        append32(36 + dataSize)
        append("WAVE")
        append("fmt ")
        append32(16)
        append16(1)
        append16(1)
        append32(UInt32(SandboxSound.sampleRate))
        append32(UInt32(SandboxSound.sampleRate * 2))
        append16(2)
        append16(16)
        append("data")
        append32(dataSize)
        return bytes
    }
}
