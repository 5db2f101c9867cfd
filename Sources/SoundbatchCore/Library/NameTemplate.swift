import Foundation

/// How a library's files are named: text with fields in braces, `{Category}/{id}_{take}`.
/// A slash in the template makes a folder; a slash in a value never does. Fields: `id` (the
/// row's id, else a slug of its prompt, as downloads are named), `row` (its id, else
/// `line-N`), `line`, `take`, `prompt` (its first words), `batch`, `task`, and any of the
/// sheet's own columns by name (`{Category}`, `{CatID}`). Letter case aside, every field:
/// `{ID}` is `{id}`; a column named like a built-in field is reached by its own name only if
/// it differs from the field's.
public struct NameTemplate: Sendable, Equatable {
    public let text: String
    let parts: [Part]

    enum Part: Equatable {
        case literal(String)
        case field(String)
    }

    public static let builtIn = ["id", "row", "line", "take", "prompt", "batch", "task"]
    public static let standard = try! NameTemplate("{id}_{take}")

    public init(_ text: String) throws(NameTemplateError) {
        self.text = text
        var parts: [Part] = []
        var literal = ""
        var rest = Substring(text)
        while let character = rest.first {
            rest.removeFirst()
            switch character {
            case "{":
                guard let close = rest.firstIndex(of: "}") else { throw NameTemplateError.unclosed(text) }
                let name = rest[..<close].trimmingCharacters(in: .whitespaces)
                guard !name.isEmpty, !name.contains("{") else { throw NameTemplateError.emptyField(text) }
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                parts.append(.field(Self.builtIn.contains(name.lowercased()) ? name.lowercased() : name))
                rest = rest[rest.index(after: close)...]
            case "}":
                throw NameTemplateError.unopened(text)
            default:
                literal.append(character)
            }
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        guard parts.contains(where: { if case .field = $0 { true } else { false } }) else {
            throw NameTemplateError.noField(text)
        }
        self.parts = parts
    }

    /// The fields neither built in nor among `columns`.
    public func unknownFields(columns: [String]) -> [String] {
        let known = Set((Self.builtIn + columns).map { $0.lowercased() })
        return parts.compactMap {
            if case let .field(name) = $0, !known.contains(name.lowercased()) { name } else { nil }
        }
    }

    /// The fields that come out empty for `sound` (a column it left blank): a name made
    /// without them would guess, so the export refuses it.
    public func emptyFields(for sound: LibrarySound) -> [String] {
        parts.compactMap {
            if case let .field(name) = $0, value(of: name, for: sound).trimmed.isEmpty { name } else { nil }
        }
    }

    /// Whether names made from this template tell the takes of one row apart.
    public var namesTakes: Bool { parts.contains { $0 == .field("take") || $0 == .field("task") } }

    /// The sound's path in the library, without its extension: folders from the template's
    /// slashes, each part safe on Windows, macOS and Linux (`LibraryNames.safe`).
    public func path(for sound: LibrarySound, ascii: Bool) -> String {
        var path = ""
        for part in parts {
            switch part {
            case let .literal(text): path += text
            case let .field(name): path += LibraryNames.flattened(value(of: name, for: sound))
            }
        }
        return path.split(separator: "/", omittingEmptySubsequences: false)
            .map { LibraryNames.safe(String($0), ascii: ascii) }.joined(separator: "/")
    }

    func value(of field: String, for sound: LibrarySound) -> String {
        switch field {
        case "id": sound.keyedByContent ? FileNames.slug(sound.prompt) : sound.rowKey
        case "row": sound.keyedByContent ? "line-\(sound.line)" : sound.rowKey
        case "line": String(sound.line)
        case "take": String(sound.take)
        case "prompt": FileNames.slug(sound.prompt)
        case "batch": sound.batch
        case "task": sound.taskID
        default: sound.column(field) ?? ""
        }
    }
}

/// A name template that cannot be read.
public enum NameTemplateError: Error, Equatable, CustomStringConvertible {
    case unclosed(String)
    case unopened(String)
    case emptyField(String)
    case noField(String)

    public var description: String {
        switch self {
        case let .unclosed(text): "the name template \(text) opens a { it never closes"
        case let .unopened(text): "the name template \(text) closes a } it never opened (write fields as {Column})"
        case let .emptyField(text): "the name template \(text) has an empty {}"
        case let .noField(text):
            "the name template \(text) names every sound alike; add fields, such as {id}_{take}"
        }
    }
}

/// Names that every file system takes.
public enum LibraryNames {
    static let maxBytes = 100

    /// A value within one part of a path: its slashes and backslashes are not folders.
    static func flattened(_ value: String) -> String {
        value.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "\\", with: "_")
    }

    /// One part of a path as Windows, macOS and Linux all take it: no control or reserved
    /// characters (`<>:"/\|?*`), no leading dot, no trailing dot or space, not a name
    /// Windows keeps for devices (CON, PRN, AUX, NUL, COM1-9, LPT1-9, whatever follows a
    /// dot), composed characters written one way (NFC), at most 100 bytes; empty becomes
    /// `untitled`. With `ascii`, letters lose their accents (é to e) and what is left
    /// outside ASCII becomes `_`.
    public static func safe(_ text: String, ascii: Bool) -> String {
        var text = text.precomposedStringWithCanonicalMapping
        if ascii {
            text = text.applyingTransform(.toLatin, reverse: false) ?? text
            text = text.folding(options: [.diacriticInsensitive, .widthInsensitive], locale: Locale(identifier: "en"))
        }
        var name = ""
        for scalar in text.unicodeScalars {
            let forbidden =
                scalar.value < 0x20 || scalar.value == 0x7F || "/\\:*?\"<>|".unicodeScalars.contains(scalar)
                || (ascii && scalar.value > 0x7E)
            name.unicodeScalars.append(forbidden ? "_" : scalar)
        }
        name = name.trimmingCharacters(in: .whitespaces)
        while name.hasPrefix(".") { name.replaceSubrange(name.startIndex...name.startIndex, with: "_") }
        while name.hasSuffix(".") || name.hasSuffix(" ") { name.removeLast() }
        while name.utf8.count > maxBytes { name.removeLast() }
        if name.isEmpty { return "untitled" }
        let stem =
            name.split(separator: ".", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).uppercased() }
            ?? ""
        let devices = ["CON", "PRN", "AUX", "NUL"] + (1...9).flatMap { ["COM\($0)", "LPT\($0)"] }
        return devices.contains(stem) ? "_" + name : name
    }
}
