import Foundation

/// Short, real WAV files: a decaying tone whose pitch comes from the prompt, so each
/// sound differs and any player can play it.
enum WAV {
    static let sampleRate = 16_000

    static func tone(for prompt: String, seconds: Double) -> [UInt8] {
        var hash: UInt32 = 2_166_136_261
        for byte in prompt.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let frequency = 220 + Double(hash % 660)
        let count = Int(Double(sampleRate) * seconds)
        var samples = [Int16](repeating: 0, count: count)
        for index in 0..<count {
            let time = Double(index) / Double(sampleRate)
            let envelope = exp(-3 * time)
            samples[index] = Int16(12_000 * envelope * sin(2 * .pi * frequency * time))
        }
        return encode(samples)
    }

    /// 16-bit mono PCM in a RIFF/WAVE container.
    static func encode(_ samples: [Int16]) -> [UInt8] {
        var bytes: [UInt8] = []
        func append(_ text: String) { bytes += Array(text.utf8) }
        func append32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        func append16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        let dataSize = UInt32(samples.count * 2)
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
        for sample in samples { append16(UInt16(bitPattern: sample)) }
        return bytes
    }
}
