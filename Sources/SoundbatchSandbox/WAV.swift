import Foundation
import Hummingbird
import NIOCore

/// Real WAV files as long as a task asked: a tone whose pitch comes from the prompt and
/// which strikes once a second, so each sound differs and any player can play it. A file is
/// written a second at a time from one second of samples, so a long one never sits whole
/// in memory.
enum WAV {
    static let sampleRate = 16_000
    static let headerSize = 44

    /// The file's size in bytes.
    static func size(seconds: Int) -> Int { headerSize + seconds * sampleRate * 2 }

    /// Writes the file for `seconds` of sound, one second at a time.
    static func write(for prompt: String, seconds: Int, to writer: inout any ResponseBodyWriter) async throws {
        try await writer.write(ByteBuffer(bytes: header(sampleCount: seconds * sampleRate)))
        let second = ByteBuffer(bytes: oneSecond(frequency: frequency(for: prompt)))
        for _ in 0..<seconds { try await writer.write(second) }
        try await writer.finish(nil)
    }

    static func frequency(for prompt: String) -> Double {
        var hash: UInt32 = 2_166_136_261
        for byte in prompt.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return 220 + Double(hash % 660)
    }

    /// One second of the tone, decaying from its strike: 16-bit little-endian samples.
    static func oneSecond(frequency: Double) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(sampleRate * 2)
        for index in 0..<sampleRate {
            let time = Double(index) / Double(sampleRate)
            let sample = Int16(12_000 * exp(-3 * time) * sin(2 * .pi * frequency * time))
            withUnsafeBytes(of: sample.littleEndian) { bytes += $0 }
        }
        return bytes
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
