#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A streaming RFC 4180 reader over the bytes of a file.
///
/// Why our own: yaslab/CSV.swift takes 10.9 s (release) to parse a 1M-row, 76 MB file,
/// six times sqlite3's whole `.import` of it (1.85 s). This reader scans bytes in 1 MiB
/// chunks and keeps only the current record in memory; `scripts/bench-ingest.sh` measures
/// it (figures in the README).
///
/// Accepted: quoted fields, doubled quotes, separators and line breaks inside quotes,
/// LF, CRLF or a lone CR between records, an optional UTF-8 byte-order mark, blank lines
/// and lines of only spaces (skipped). The separator is a comma, a semicolon (as Excel
/// writes "CSV" in many European locales) or a tab, whichever the header line holds most
/// of outside quotes, unless one is given. UTF-16 with a byte-order mark (Excel's "Unicode
/// Text") is turned into UTF-8 as it is read. A stray quote, text after a closing quote or
/// bytes that are not UTF-8 mark that record's `problem`; an unterminated quote or an
/// oversized field throws.
public final class CSVReader {
    /// No field may be longer than this; it bounds memory on hostile input
    /// (an unclosed quote near the top of a large file would otherwise swallow all of it).
    public static let defaultFieldLimit = 1 << 20

    private let fd: Int32
    /// The file, as named when it was opened.
    public let path: String
    private let fieldLimit: Int
    private let chunkSize: Int
    private var buffer: UnsafeMutableBufferPointer<UInt8>
    /// The field separator: given, or found in the header line.
    public private(set) var delimiter: UInt8
    private let delimiterGiven: Bool
    /// Set when the file is UTF-16: what turns it into UTF-8.
    private var utf16: UTF16Decoder?
    private var count = 0
    private var position = 0
    private var atEOF = false
    private var atStart = true
    private var line = 1
    /// A CR ended the previous record; an LF right after it belongs to the same line break.
    private var swallowLF = false

    // The record being assembled: all field bytes back to back, and where each field ends.
    private var recordBytes: [UInt8] = []
    private var fieldEnds: [Int] = []

    /// What a record's problem says when its bytes are not UTF-8.
    public static let notUTF8 = "is not valid UTF-8"

    /// The separators a header line may use.
    public static let delimiters: [UInt8] = [UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "\t")]

    public init(
        path: String, delimiter: UInt8? = nil, fieldLimit: Int = CSVReader.defaultFieldLimit,
        chunkSize: Int = 1 << 20
    ) throws {
        var info = stat()
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CSVError.cannotOpen(path: path, reason: Self.errnoText()) }
        guard fstat(fd, &info) == 0 else {
            let reason = Self.errnoText()
            close(fd)
            throw CSVError.cannotOpen(path: path, reason: reason)
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw CSVError.cannotOpen(path: path, reason: "it is a directory, not a file")
        }
        self.fd = fd
        self.path = path
        self.fieldLimit = fieldLimit
        self.delimiter = delimiter ?? Self.comma
        delimiterGiven = delimiter != nil
        self.chunkSize = max(chunkSize, 1)
        self.buffer = .allocate(capacity: max(chunkSize, 16))
        recordBytes.reserveCapacity(4096)
    }

    deinit {
        buffer.deallocate()
        close(fd)
    }

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }

    /// Refills the buffer; false at the end of the file.
    private func refill() throws -> Bool {
        count = try readChunk(into: 0)
        position = 0
        if atStart {
            atStart = false
            // Gather at least three bytes, however small the chunks, to see a byte-order mark.
            while count > 0 && count < 3 {
                let more = try readChunk(into: count)
                if more == 0 { break }
                count += more
            }
            if count >= 3, buffer[0] == 0xEF, buffer[1] == 0xBB, buffer[2] == 0xBF {
                position = 3
            } else if count >= 2, buffer[0] == 0xFF && buffer[1] == 0xFE || buffer[0] == 0xFE && buffer[1] == 0xFF {
                // UTF-16: what follows the mark is decoded from here on.
                utf16 = UTF16Decoder(bigEndian: buffer[0] == 0xFE, pending: Array(buffer[2..<count]))
                count = try readChunk(into: 0)
            }
            if !delimiterGiven {
                // The whole header line, as far as the buffer holds, to count its separators.
                while !buffer[position..<count].contains(where: { $0 == Self.lf || $0 == Self.cr }),
                    count < buffer.count
                {
                    let more = try readChunk(into: count)
                    if more == 0 { break }
                    count += more
                }
                delimiter = headerDelimiter()
            }
        }
        return count > 0
    }

    /// The separator the first line holds most of, outside quotes (a comma when it holds none).
    private func headerDelimiter() -> UInt8 {
        var counts = [Int](repeating: 0, count: Self.delimiters.count)
        var quoted = false
        for byte in buffer[position..<count] {
            if byte == Self.quote {
                quoted.toggle()
            } else if !quoted {
                if byte == Self.lf || byte == Self.cr { break }
                if let index = Self.delimiters.firstIndex(of: byte) { counts[index] += 1 }
            }
        }
        guard let most = counts.indices.max(by: { counts[$0] < counts[$1] }), counts[most] > 0 else {
            return Self.comma
        }
        return Self.delimiters[most]
    }

    private func readChunk(into offset: Int) throws -> Int {
        guard utf16 != nil else { return try readRaw(into: buffer.baseAddress! + offset, max: buffer.count - offset) }
        // Decode until something comes out: a chunk may end inside a character.
        while true {
            let room = UnsafeMutableBufferPointer(rebasing: buffer[offset...])
            let written = utf16!.decode(into: room, atEnd: atEOF)
            if written > 0 || atEOF { return written }
            var raw = [UInt8](repeating: 0, count: max(chunkSize / 2 * 2, 16))
            let n = try raw.withUnsafeMutableBufferPointer { try readRaw(into: $0.baseAddress!, max: $0.count) }
            utf16!.pending += raw.prefix(n)
        }
    }

    private func readRaw(into start: UnsafeMutablePointer<UInt8>, max limit: Int) throws -> Int {
        if atEOF { return 0 }
        while true {
            let n = read(fd, start, min(chunkSize, limit))
            if n < 0 {
                if errno == EINTR { continue }
                throw CSVError.cannotRead(path: path, reason: Self.errnoText())
            }
            if n == 0 { atEOF = true }
            return n
        }
    }

    private enum State { case fieldStart, unquoted, quoted, quoteInQuoted }

    private static let quoteInUnquotedField =
        "a quote inside an unquoted field; enclose the field in quotes and write the quote as \"\""
    private static let textAfterClosingQuote =
        "text after the closing quote of a field; put the whole field inside the quotes"

    private static let comma = UInt8(ascii: ","), quote = UInt8(ascii: "\""),
        lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")

    /// The next record, or nil at the end of the file.
    public func next() throws -> CSVRecord? {
        recordBytes.removeAll(keepingCapacity: true)
        fieldEnds.removeAll(keepingCapacity: true)
        var state = State.fieldStart
        var startLine = line
        var hasContent = false
        var problem: String?
        var fieldStart = 0

        while true {
            if position == count {
                guard try refill() else { break }
                continue
            }
            let byte = buffer[position]
            if swallowLF {
                swallowLF = false
                if byte == Self.lf {
                    position += 1
                    continue
                }
            }
            switch state {
            case .fieldStart, .unquoted:
                if byte == delimiter {
                    fieldEnds.append(recordBytes.count)
                    fieldStart = recordBytes.count
                    hasContent = true
                    state = .fieldStart
                    position += 1
                } else if byte == Self.lf || byte == Self.cr {
                    position += 1
                    line += 1
                    swallowLF = byte == Self.cr
                    if hasContent {
                        fieldEnds.append(recordBytes.count)
                        return makeRecord(line: startLine, problem: problem)
                    }
                    startLine = line  // a blank line: skip it
                } else if byte == Self.quote {
                    position += 1
                    hasContent = true
                    if state == .fieldStart {
                        state = .quoted
                    } else {
                        problem = problem ?? Self.quoteInUnquotedField
                        recordBytes.append(byte)
                    }
                } else {
                    copyUnquotedRun()
                    state = .unquoted
                    hasContent = true
                }
            case .quoted:
                if byte == Self.quote {
                    state = .quoteInQuoted
                    position += 1
                } else {
                    copyQuotedRun()
                }
            case .quoteInQuoted:
                if byte == Self.quote {
                    recordBytes.append(byte)
                    state = .quoted
                    position += 1
                } else if byte == delimiter || byte == Self.lf || byte == Self.cr {
                    state = .unquoted  // the field is closed; the separator is handled above
                } else {
                    problem = problem ?? Self.textAfterClosingQuote
                    state = .unquoted
                }
            }
            try checkLimits(fieldStart: fieldStart, line: startLine)
        }
        // End of file.
        if state == .quoted { throw CSVError.unterminatedQuote(line: startLine) }
        guard hasContent else { return nil }
        fieldEnds.append(recordBytes.count)
        return makeRecord(line: startLine, problem: problem)
    }

    /// Copies the run of ordinary bytes from `position` in one go.
    @inline(__always)
    private func copyUnquotedRun() {
        let runStart = position
        var end = position + 1
        let delimiter = delimiter
        while end < count {
            let b = buffer[end]
            if b == delimiter || b == Self.quote || b == Self.lf || b == Self.cr { break }
            end += 1
        }
        recordBytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[runStart..<end]))
        position = end
    }

    /// Copies a quoted field's bytes from `position` to its next quote in one go, counting
    /// the line breaks among them.
    @inline(__always)
    private func copyQuotedRun() {
        let runStart = position
        var end = position + 1
        while end < count, buffer[end] != Self.quote { end += 1 }
        let run = UnsafeBufferPointer(rebasing: buffer[runStart..<end])
        for b in run where b == Self.lf { line += 1 }
        recordBytes.append(contentsOf: run)
        position = end
    }

    /// A field or record past its limit stops the reading (the file may not be CSV at all).
    @inline(__always)
    private func checkLimits(fieldStart: Int, line: Int) throws {
        if recordBytes.count - fieldStart > fieldLimit { throw CSVError.fieldTooLong(line: line, limit: fieldLimit) }
        if recordBytes.count + fieldEnds.count > 4 * fieldLimit {
            throw CSVError.recordTooLong(line: line, limit: 4 * fieldLimit)
        }
    }

    private func makeRecord(line: Int, problem: String?) -> CSVRecord {
        var problem = problem
        let fields = recordBytes.withUnsafeBufferPointer { bytes -> [String] in
            var isASCII = true
            var hasNUL = false
            for b in bytes {
                if b >= 0x80 { isASCII = false } else if b == 0 { hasNUL = true }
            }
            if hasNUL && problem == nil {
                problem =
                    "the row contains a NUL byte; is this a text file? (UTF-16 needs its byte-order mark; "
                    + "or save it as \"CSV UTF-8\")"
            }
            var fields: [String] = []
            fields.reserveCapacity(fieldEnds.count)
            var start = 0
            for (index, end) in fieldEnds.enumerated() {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<end])
                if isASCII {
                    fields.append(String(decoding: slice, as: UTF8.self))
                } else if let text = String(validating: slice, as: UTF8.self) {
                    fields.append(text)
                } else {
                    fields.append(String(decoding: slice, as: UTF8.self))
                    if problem == nil {
                        problem =
                            "field \(index + 1) \(CSVReader.notUTF8): the file is in another encoding; "
                            + "save it as \"CSV UTF-8\" (in Excel: File > Save As > CSV UTF-8)"
                    }
                }
                start = end
            }
            return fields
        }
        return CSVRecord(fields: fields, line: line, problem: problem)
    }
}
