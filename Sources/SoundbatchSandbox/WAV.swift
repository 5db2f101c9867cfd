import Foundation
import Hummingbird
import NIOCore
import SoundbatchAudio

/// Real WAV files as long as a task asked: a tone whose pitch comes from the task (so that
/// two takes of one prompt differ, as the service's do) and which strikes once a second, so
/// any player can play it. A file is written a second at a time from one second of samples,
/// so a long one never sits whole in memory.
enum WAV {
    static let sampleRate = 16_000
    static let headerSize = 44

    /// The file's size in bytes.
    static func size(seconds: Int) -> Int { headerSize + seconds * sampleRate * 2 }

    /// Writes the file for `seconds` of sound, one second at a time.
    static func write(for taskID: String, seconds: Int, to writer: inout any ResponseBodyWriter) async throws {
        try await writer.write(ByteBuffer(bytes: header(sampleCount: seconds * sampleRate)))
        let second = ByteBuffer(bytes: oneSecond(frequency: frequency(for: taskID)))
        for _ in 0..<seconds { try await writer.write(second) }
        try await writer.finish(nil)
    }

    static func frequency(for taskID: String) -> Double {
        var hash: UInt32 = 2_166_136_261
        for byte in taskID.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return 220 + Double(hash % 660)
    }

    /// One second of the tone, decaying from its strike, from -1 to 1.
    static func oneSecondOfSamples(frequency: Double) -> [Float] {
        (0..<sampleRate).map { index in
            let time = Double(index) / Double(sampleRate)
            return Float(12_000.0 / 32_768 * exp(-3 * time) * sin(2 * .pi * frequency * time))
        }
    }

    /// One second of the tone: 16-bit little-endian samples.
    static func oneSecond(frequency: Double) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(sampleRate * 2)
        for sample in oneSecondOfSamples(frequency: frequency) {
            withUnsafeBytes(of: Int16(sample * 32_768).littleEndian) { bytes += $0 }
        }
        return bytes
    }

    /// The whole sound as MP3, as the real service sends its audio (LAME, through libsndfile).
    static func mp3(for taskID: String, seconds: Int) throws -> Data {
        let second = oneSecondOfSamples(frequency: frequency(for: taskID))
        let sound = Sound(
            samples: Array((0..<seconds).map { _ in second }.joined()), channels: 1, sampleRate: sampleRate)
        let path = NSTemporaryDirectory() + "/soundbatch-sandbox-\(UUID().uuidString).mp3"
        defer { unlink(path) }
        try sound.write(
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
        append32(UInt32(sampleRate))
        append32(UInt32(sampleRate * 2))
        append16(2)
        append16(16)
        append("data")
        append32(dataSize)
        return bytes
    }
}
