import CFLAC
import CSndFile
import Foundation

/// The file a sound is written as.
public struct SoundFormat: Sendable, Hashable, Codable {
    public enum Container: String, Sendable, Hashable, Codable, CaseIterable {
        /// Broadcast WAV: a `bext` chunk and an iXML chunk.
        case wav
        /// FLAC, with Vorbis comments.
        case flac
        /// MPEG-1/2 Layer III (through LAME), as the real service sends: no tags, and bits do not apply.
        case mp3
    }

    public var container: Container
    /// 16 or 24.
    public var bits: Int

    public init(container: Container = .wav, bits: Int = 24) {
        self.container = container
        self.bits = bits
    }

    public var fileExtension: String { container.rawValue }
}

/// What a library file says of its sound, where sound-library tools read it: in a WAV, the
/// `bext` chunk (EBU Tech 3285) and an iXML chunk; in a FLAC, Vorbis comments.
public struct SoundTags: Sendable, Hashable, Codable {
    /// What names the sound: its row's id (FLAC TITLE; iXML SCENE).
    public var title: String
    /// The prompt that made it (bext Description, in ASCII, trimmed to 256 bytes; FLAC DESCRIPTION and
    /// COMMENT; iXML NOTE).
    public var description: String
    /// Its take (iXML TAKE).
    public var take: Int
    /// The batch (iXML PROJECT; FLAC ALBUM).
    public var project: String
    /// The service's task ID (bext OriginatorReference, 32 bytes; iXML and FLAC in full).
    public var taskID: String
    /// When it was made, UTC (bext OriginationDate and OriginationTime; FLAC DATE).
    public var made: Date?
    /// The row's own columns, in the sheet's order.
    public var columns: [Column]
    /// Measured loudness of what is written (bext version 2's loudness fields).
    public var loudness: Loudness?

    public struct Column: Sendable, Hashable, Codable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(
        title: String, description: String, take: Int, project: String, taskID: String, made: Date?, columns: [Column]
    ) {
        self.title = title
        self.description = description
        self.take = take
        self.project = project
        self.taskID = taskID
        self.made = made
        self.columns = columns
    }

    public static let originator = "soundbatch"
}

extension Sound {
    /// Writes the sound to `path` as `format`, with `tags`. libsndfile writes the audio
    /// (clipping, never wrapping, what is over full scale) and the WAV chunks; libFLAC the
    /// FLAC's comments. The same sound and tags always make the same bytes: no chunk holds
    /// the time of writing.
    public func write(to path: String, as format: SoundFormat, tags: SoundTags) throws(AudioError) {
        let subtype = format.bits == 16 ? SF_FORMAT_PCM_16 : SF_FORMAT_PCM_24
        var info = SF_INFO()
        info.samplerate = Int32(sampleRate)
        info.channels = Int32(channels)
        info.format =
            switch format.container {
            case .wav: Int32(SF_FORMAT_WAV | subtype)
            case .flac: Int32(SF_FORMAT_FLAC | subtype)
            case .mp3: Int32(SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III)
            }
        guard let file = sf_open(path, Int32(SFM_WRITE), &info) else {
            throw AudioError("cannot write \(path): \(String(cString: sf_strerror(nil)))")
        }
        var ixml = Array(tags.ixml.utf8)
        if ixml.count % 2 == 1 { ixml.append(0) }  // RIFF chunks are of even length
        let written: Int = ixml.withUnsafeMutableBytes { ixmlBytes in
            sf_command(file, Int32(SFC_SET_CLIPPING), nil, Int32(SF_TRUE))
            if format.container == .wav {
                sf_command(file, Int32(SFC_SET_ADD_PEAK_CHUNK), nil, Int32(SF_FALSE))  // it holds the time of writing
                var bext = tags.broadcastInfo
                sf_command(file, Int32(SFC_SET_BROADCAST_INFO), &bext, Int32(MemoryLayout<SF_BROADCAST_INFO>.size))
                var chunk = SF_CHUNK_INFO()
                withUnsafeMutableBytes(of: &chunk.id) { id in
                    for (index, byte) in "iXML".utf8.enumerated() { id[index] = byte }
                }
                chunk.id_size = 4
                chunk.datalen = UInt32(ixmlBytes.count)
                chunk.data = ixmlBytes.baseAddress
                sf_set_chunk(file, &chunk)
            }
            if format.bits == 16 && format.container != .mp3 {
                let steps = sixteenBitSteps()
                return steps.withUnsafeBufferPointer { Int(sf_writef_short(file, $0.baseAddress, sf_count_t(frames))) }
            }
            return samples.withUnsafeBufferPointer { Int(sf_writef_float(file, $0.baseAddress, sf_count_t(frames))) }
        }
        let closed = sf_close(file)
        guard written == frames, closed == 0 else {
            throw AudioError("cannot write \(path): \(String(cString: sf_error_number(closed)))")
        }
        if format.container == .flac { try FLACComments.write(tags.vorbisComments, to: path) }
    }
}

extension Sound {
    /// The samples as 16-bit integers, with triangular (TPDF) dither of one step: quiet
    /// passages and fades keep their shape under the noise instead of breaking into steps
    /// (quantisation distortion). Rounded here, not by libsndfile: its float conversion with
    /// clipping on floors (0.75 of a step writes 0, -0.25 writes -1; libsndfile 1.2.0), half
    /// a step of bias. The noise is seeded, so the same sound makes the same bytes.
    func sixteenBitSteps() -> [Int16] {
        var random = SeededRandom(seed: UInt64(frames))
        return samples.map { sample in
            let noise = random.double(in: 0...1) - random.double(in: 0...1)
            return Int16(clamping: Int((Double(sample) * 32768 + noise).rounded()))
        }
    }
}

extension SoundTags {
    /// `bext`, version 2 (with loudness when measured).
    var broadcastInfo: SF_BROADCAST_INFO {
        var info = SF_BROADCAST_INFO()
        func put<T>(_ text: String, into field: inout T, size: Int) {
            withUnsafeMutableBytes(of: &field) { bytes in
                for (index, byte) in Array(text.utf8.prefix(size)).enumerated() { bytes[index] = byte }
            }
        }
        put(String(Self.ascii(description).prefix(256)), into: &info.description, size: 256)
        put(Self.originator, into: &info.originator, size: 32)
        put(reference, into: &info.originator_reference, size: 32)
        if let made {
            let utc = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: made)
            put(
                String(format: "%04d-%02d-%02d", utc.year ?? 0, utc.month ?? 0, utc.day ?? 0),
                into: &info.origination_date,
                size: 10)
            put(
                String(format: "%02d:%02d:%02d", utc.hour ?? 0, utc.minute ?? 0, utc.second ?? 0),
                into: &info.origination_time, size: 8)
        }
        info.version = 2
        // Loudness in hundredths; 0x7FFF says "not measured".
        let hundredths = { (value: Double?) in value.map { Int16(clamping: Int(($0 * 100).rounded())) } ?? 0x7FFF }
        info.loudness_value = hundredths(loudness?.integrated)
        info.loudness_range = 0x7FFF
        info.max_true_peak_level = hundredths(loudness?.truePeak)
        info.max_momentary_loudness = 0x7FFF
        info.max_shortterm_loudness = 0x7FFF
        return info
    }

    /// The task ID in 32 bytes: a UUID without its dashes, else its first 32 bytes.
    var reference: String {
        let plain = taskID.replacingOccurrences(of: "-", with: "")
        return plain.utf8.count <= 32 && UUID(uuidString: taskID) != nil
            ? plain : String(decoding: Self.prefix(of: taskID, bytes: 32), as: UTF8.self)
    }

    /// `text` in ASCII, as EBU Tech 3285 has bext's text (readers take its bytes as ASCII, or
    /// Latin-1: "CafÃ©" for UTF-8's "Café"): letters without their accents, other scripts
    /// written in Latin letters, what is left `?`. The whole text is in iXML's NOTE.
    static func ascii(_ text: String) -> String {
        let latin = text.applyingTransform(.toLatin, reverse: false) ?? text
        let plain = latin.folding(options: [.diacriticInsensitive, .widthInsensitive], locale: Locale(identifier: "en"))
        return String(plain.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? Character($0) : "?" })
    }

    /// The longest start of `text` of at most `bytes` UTF-8 bytes that ends between characters.
    static func prefix(of text: String, bytes: Int) -> [UInt8] {
        var kept: [UInt8] = []
        for character in text {
            let encoded = Array(String(character).utf8)
            if kept.count + encoded.count > bytes { break }
            kept += encoded
        }
        return kept
    }

    /// The iXML chunk: the batch as PROJECT, the row as SCENE, the take as TAKE, the prompt
    /// as NOTE, and the row's columns in USER, a line each.
    var ixml: String {
        func escaped(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
        }
        let user = (columns.map { "\($0.name)=\($0.value)" } + ["TASK_ID=\(taskID)"]).joined(separator: "\n")
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <BWFXML><IXML_VERSION>2.10</IXML_VERSION><PROJECT>\(escaped(project))</PROJECT>\
            <SCENE>\(escaped(title))</SCENE><TAKE>\(take)</TAKE><NOTE>\(escaped(description))</NOTE>\
            <USER>\(escaped(user))</USER></BWFXML>
            """
    }

    /// Vorbis comments: TITLE, DESCRIPTION and COMMENT (the prompt), ALBUM (the batch),
    /// DATE, ENCODER, SOUNDBATCH_TASK_ID, then each column under its name in capitals.
    var vorbisComments: [(String, String)] {
        var comments = [
            ("TITLE", title), ("DESCRIPTION", description), ("COMMENT", description), ("ALBUM", project),
            ("TRACKNUMBER", String(take)), ("ENCODER", Self.originator), ("SOUNDBATCH_TASK_ID", taskID)
        ]
        if let made { comments.append(("DATE", ISO8601DateFormatter().string(from: made))) }
        for column in columns { comments.append((Self.vorbisName(column.name), column.value)) }
        return comments
    }

    /// A field name as Vorbis comments allow (ASCII 0x20 to 0x7D but `=`), in capitals.
    static func vorbisName(_ name: String) -> String {
        let allowed = name.uppercased().unicodeScalars.map {
            (0x20...0x7D).contains($0.value) && $0 != "=" ? Character($0) : "_"
        }
        return allowed.isEmpty ? "COLUMN" : String(allowed)
    }
}

/// A FLAC file's Vorbis comment block, written with libFLAC's metadata interface
/// (libsndfile writes only its ten fixed strings, and a sheet's columns are not among them).
enum FLACComments {
    static func write(_ comments: [(String, String)], to path: String) throws(AudioError) {
        guard let chain = FLAC__metadata_chain_new() else { throw AudioError("libFLAC: out of memory") }
        defer { FLAC__metadata_chain_delete(chain) }
        guard FLAC__metadata_chain_read(chain, path) != 0, let iterator = FLAC__metadata_iterator_new() else {
            throw AudioError("libFLAC cannot read \(path) back")
        }
        defer { FLAC__metadata_iterator_delete(iterator) }
        FLAC__metadata_iterator_init(iterator, chain)
        var block: UnsafeMutablePointer<FLAC__StreamMetadata>?
        repeat {
            if FLAC__metadata_iterator_get_block_type(iterator) == FLAC__METADATA_TYPE_VORBIS_COMMENT {
                block = FLAC__metadata_iterator_get_block(iterator)
                break
            }
        } while FLAC__metadata_iterator_next(iterator) != 0
        if block == nil {
            guard let made = FLAC__metadata_object_new(FLAC__METADATA_TYPE_VORBIS_COMMENT),
                FLAC__metadata_iterator_insert_block_after(iterator, made) != 0
            else { throw AudioError("libFLAC cannot add comments to \(path)") }
            block = made
        }
        for (name, value) in comments {
            var entry = FLAC__StreamMetadata_VorbisComment_Entry()
            guard FLAC__metadata_object_vorbiscomment_entry_from_name_value_pair(&entry, name, value) != 0,
                FLAC__metadata_object_vorbiscomment_append_comment(block, entry, 0) != 0
            else { throw AudioError("libFLAC cannot add the comment \(name) to \(path)") }
        }
        FLAC__metadata_chain_sort_padding(chain)
        guard FLAC__metadata_chain_write(chain, 1, 0) != 0 else {
            throw AudioError("libFLAC cannot write the comments of \(path)")
        }
    }
}
