import Foundation

/// A category of the Universal Category System, the naming and category standard that
/// Soundminer, Soundly, BaseHead and Reaper read: `DOORWood` is DOORS / WOOD.
public struct UCSCategory: Sendable, Equatable, Decodable {
    public let catID: String
    public let category: String
    public let subCategory: String
    public let synonyms: [String]

    enum CodingKeys: String, CodingKey {
        case catID = "CatID"
        case category = "Category"
        case subCategory = "SubCategory"
        case synonyms = "Synonyms"
    }

    /// Its synonyms that `prompt` holds, as words (any case), in the list's order.
    public func keywords(in prompt: String) -> [String] {
        var seen: Set<[String]> = []  // "sword" and "swords" are one keyword
        return UCS.matches(synonyms, in: UCS.words(prompt)).map(\.phrase).filter { seen.insert(UCS.words($0)).inserted }
    }
}

/// The UCS list, v8.2.1 (`ucs-8.2.1-en.json`: 752 CatIDs, from the public JSON transcription
/// named in the file), read once.
public enum UCS {
    private struct List: Decodable {
        var version: String
        var categories: [UCSCategory]
    }

    private static let list = try! JSONDecoder().decode(List.self, from: Data(PackageResources.ucs_8_2_1_en_json))
    private static let byID = Dictionary(uniqueKeysWithValues: list.categories.map { ($0.catID, $0) })

    public static var version: String { list.version }
    public static var categories: [UCSCategory] { list.categories }

    /// The category of a CatID, written as the list writes it.
    public static func category(_ catID: String) -> UCSCategory? { byID[catID] }

    /// The CatIDs nearest one that is not on the list, nearest first: the same letters in
    /// another case, else those a few letters' edits away (at most three of them).
    public static func nearest(_ catID: String) -> [UCSCategory] {
        let asked = Array(catID.lowercased())
        let limit = max(2, asked.count / 3)
        var near: [(category: UCSCategory, distance: Int)] = []
        for category in list.categories {
            let distance = editDistance(asked, Array(category.catID.lowercased()))
            if distance <= limit { near.append((category, distance)) }
        }
        near.sort { ($0.distance, $0.category.catID) < ($1.distance, $1.category.catID) }
        return near.prefix(3).map(\.category)
    }

    /// Levenshtein's distance between two words.
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    /// CatIDs for a sound whose row has none, best first (at most three), each with the
    /// words of `prompt` that chose it. A word naming its subcategory counts three, its
    /// category two, each of its synonyms one, and a word counts less the later it comes
    /// (a prompt names its subject first: "Sword unsheathe fast metal ring" is WEAPONS /
    /// SWORD, not RAIN / METAL). None when no word of the prompt is on the list. Proposals
    /// for a person to accept (`export --suggest-category`), never a name.
    public static func suggestions(for prompt: String) -> [(category: UCSCategory, because: [String])] {
        let written = UCS.written(prompt)
        let words = written.map(UCS.singular)
        var scored: [(category: UCSCategory, score: Double, because: [String])] = []
        for category in list.categories {
            let found =
                matches([category.subCategory], in: words).map { ($0, 3.0) }
                + matches([category.category], in: words).map { ($0, 2.0) }
                + matches(category.synonyms, in: words).map { ($0, 1.0) }
            guard !found.isEmpty else { continue }
            let score = found.reduce(0) { $0 + $1.1 / (1 + 0.1 * Double($1.0.words.lowerBound)) }
            let because = found.map { match, _ in written[match.words].joined(separator: " ") }
            scored.append((category, score, Set(because).sorted()))
        }
        // Stable: among equals, the list's order.
        let best = scored.enumerated().sorted { ($1.element.score, $0.offset) < ($0.element.score, $1.offset) }
        return best.prefix(3).map { ($0.element.category, $0.element.because) }
    }

    /// Those of `phrases` whose words come, in order, among `words`, with where they first do.
    static func matches(_ phrases: [String], in words: [String]) -> [(phrase: String, words: Range<Int>)] {
        phrases.compactMap { phrase in
            let parts = UCS.words(phrase)
            guard !parts.isEmpty, parts.count <= words.count else { return nil }
            return (0...(words.count - parts.count)).first { Array(words[$0..<($0 + parts.count)]) == parts }
                .map { (phrase, $0..<($0 + parts.count)) }
        }
    }

    /// A text's words, in lower case, a plural's `s` dropped so that "door" finds DOORS and
    /// "creaks" finds "creak" (both sides of a match are read alike).
    static func words(_ text: String) -> [String] { written(text).map(singular) }

    /// A text's words as written, in lower case.
    static func written(_ text: String) -> [String] {
        text.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init)
    }

    static func singular(_ word: String) -> String {
        word.count > 3 && word.hasSuffix("s") && !word.hasSuffix("ss") ? String(word.dropLast()) : word
    }

    /// An FXName made from a prompt, as the convention asks: its first words in title case,
    /// at most 25 characters (whole words), no underscores (they part a name's blocks).
    public static func fxName(_ prompt: String) -> String {
        let words = prompt.replacingOccurrences(of: "_", with: " ")
            .split { !$0.isLetter && !$0.isNumber && $0 != "'" && $0 != "-" }
            .map { $0.prefix(1).uppercased() + $0.dropFirst().lowercased() }
        var name = ""
        for word in words {
            let longer = name.isEmpty ? word : name + " " + word
            if longer.count > 25 { break }
            name = longer
        }
        return name.isEmpty ? String(words.first?.prefix(25) ?? "") : name
    }
}
