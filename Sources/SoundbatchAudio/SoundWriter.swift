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
    /// Its Universal Category System fields, when the export names it by UCS.
    public var ucs: UCSFields?

    /// What Soundminer, Soundly, BaseHead and Reaper read of a UCS library: in a WAV, as
    /// elements of iXML's USER; in a FLAC, as Vorbis comments of the same names.
    public struct UCSFields: Sendable, Hashable, Codable {
        public var category: String
        public var subCategory: String
        public var catID: String
        public var fxName: String
        /// The category's synonyms the prompt holds, comma-separated.
        public var keywords: String
        /// CreatorID and SourceID, as the name has them.
        public var designer: String
        public var library: String
        /// The batch.
        public var show: String

        public init(
            category: String, subCategory: String, catID: String, fxName: String, keywords: String, designer: String,
            library: String, show: String
        ) {
            self.category = category
            self.subCategory = subCategory
            self.catID = catID
            self.fxName = fxName
            self.keywords = keywords
            self.designer = designer
            self.library = library
            self.show = show
        }

        /// `DOORS-WOOD`, as the convention writes the two together.
        var categoryFull: String { "\(category)-\(subCategory)" }

        /// In the order those tools list them, with the prompt as DESCRIPTION.
        func fields(description: String) -> [(String, String)] {
            [
                ("CATEGORY", category), ("SUBCATEGORY", subCategory), ("CATID", catID), ("CATEGORYFULL", categoryFull),
                ("FXNAME", fxName), ("DESCRIPTION", description),
                ("KEYWORDS", keywords), ("DESIGNER", designer), ("LIBRARY", library), ("SHOW", show)
            ]
        }
    }

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
        var ixml = Array(tags.ixml(channels: channels).utf8)
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
                for (field, text) in tags.riffInfo { sf_set_string(file, field, text) }
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

    /// RIFF INFO strings, in ASCII as the format has them (mediainfo shows them as Title,
    /// Comment, Performer, Album and Genre): INAM the FXName (else the row), ICMT the
    /// prompt, IART the designer, IPRD the library (else the batch), IGNR the UCS category in
    /// full, ISFT soundbatch.
    var riffInfo: [(Int32, String)] {
        var strings: [(Int32, String)] = [
            (Int32(SF_STR_TITLE), ucs?.fxName ?? title), (Int32(SF_STR_COMMENT), description),
            (Int32(SF_STR_ALBUM), ucs?.library ?? project), (Int32(SF_STR_SOFTWARE), Self.originator)
        ]
        if let ucs {
            strings += [
                (Int32(SF_STR_ARTIST), ucs.designer), (Int32(SF_STR_GENRE), ucs.categoryFull)
            ]
        }
        return strings.map { ($0.0, Self.ascii($0.1)) }.filter { !$0.1.isEmpty }
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
    /// as NOTE; a TRACK_LIST of its channels (readers such as wavinfo expect one); in USER,
    /// the fields sound-library tools read (Soundminer's elements: the prompt as DESCRIPTION,
    /// and the UCS fields when named by UCS); the row's columns and the task ID in an element
    /// of soundbatch's own, as vendors keep theirs.
    func ixml(channels: Int) -> String {
        func escaped(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        func element(_ name: String, _ value: String) -> String { "<\(name)>\(escaped(value))</\(name)>" }
        let names =
            channels == 2 ? ["Left", "Right"] : (1...max(channels, 1)).map { channels == 1 ? "Mono" : "Channel \($0)" }
        let tracks = names.enumerated().map { index, name in
            "<TRACK>" + element("CHANNEL_INDEX", "\(index + 1)") + element("INTERLEAVE_INDEX", "\(index + 1)")
                + element("NAME", name) + "</TRACK>"
        }
        let user =
            (ucs?.fields(description: description) ?? [("DESCRIPTION", description)]).filter { !$0.1.isEmpty }
            + [("EMBEDDER", Self.originator)]
        let own = columns.map { "<COLUMN NAME=\"\(escaped($0.name))\">\(escaped($0.value))</COLUMN>" }
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <BWFXML><IXML_VERSION>2.10</IXML_VERSION>\(element("PROJECT", project))\(element("SCENE", title))\
            \(element("TAKE", String(take)))\(element("NOTE", description))\
            <TRACK_LIST>\(element("TRACK_COUNT", String(names.count)))\(tracks.joined())</TRACK_LIST>\
            <USER>\(user.map { element($0.0, $0.1) }.joined())</USER>\
            <SOUNDBATCH>\(element("TASK_ID", taskID))\(own.joined())</SOUNDBATCH></BWFXML>
            """
    }

    /// Vorbis comments: TITLE, DESCRIPTION and COMMENT (the prompt), ALBUM (the batch),
    /// DATE, ENCODER, SOUNDBATCH_TASK_ID, the UCS fields when named by UCS, then each column
    /// under its name in capitals.
    var vorbisComments: [(String, String)] {
        var comments = [
            ("TITLE", title), ("DESCRIPTION", description), ("COMMENT", description), ("ALBUM", project),
            ("TRACKNUMBER", String(take)), ("ENCODER", Self.originator), ("SOUNDBATCH_TASK_ID", taskID)
        ]
        if let made { comments.append(("DATE", ISO8601DateFormatter().string(from: made))) }
        if let ucs {
            comments += ucs.fields(description: description).filter { $0.0 != "DESCRIPTION" && !$0.1.isEmpty }
        }
        // A column named as a field above (a sheet's own CatID) is not written twice.
        var named = Set(comments.map(\.0))
        for column in columns where named.insert(Self.vorbisName(column.name)).inserted {
            comments.append((Self.vorbisName(column.name), column.value))
        }
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
