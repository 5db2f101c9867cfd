/// UTF-16 bytes turned into UTF-8, a chunk at a time: a character cut by the end of a
/// chunk waits for the next. An unpaired surrogate, or an odd byte at the end, becomes
/// U+FFFD.
struct UTF16Decoder {
    let bigEndian: Bool
    /// Bytes read and not yet decoded.
    var pending: [UInt8]

    /// Decodes what fits into `output`; returns the bytes written.
    mutating func decode(into output: UnsafeMutableBufferPointer<UInt8>, atEnd: Bool) -> Int {
        var read = 0
        var written = 0
        func unit(at index: Int) -> UInt16 {
            let (a, b) = (UInt16(pending[index]), UInt16(pending[index + 1]))
            return bigEndian ? a << 8 | b : b << 8 | a
        }
        while output.count - written >= 4 {
            guard read + 1 < pending.count else { break }
            let first = unit(at: read)
            var scalar = Unicode.Scalar(first)
            var used = 2
            if (0xD800..<0xDC00).contains(first) {
                if read + 3 < pending.count {
                    let second = unit(at: read + 2)
                    if (0xDC00..<0xE000).contains(second) {
                        scalar = Unicode.Scalar(0x10000 + (UInt32(first - 0xD800) << 10 | UInt32(second - 0xDC00)))
                        used = 4
                    }
                } else if !atEnd {
                    break  // its pair is in the next chunk
                }
            }
            for byte in UTF8.encode(scalar ?? "\u{FFFD}")! {
                output[written] = byte
                written += 1
            }
            read += used
        }
        pending.removeFirst(read)
        if atEnd, pending.count == 1, output.count - written >= 3 {
            for byte in UTF8.encode("\u{FFFD}")! {
                output[written] = byte
                written += 1
            }
            pending = []
        }
        return written
    }
}
