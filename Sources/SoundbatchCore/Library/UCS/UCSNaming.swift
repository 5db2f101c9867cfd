import Foundation
import SoundbatchAudio

/// `export --name ucs`: files named as the Universal Category System has them,
/// `CatID_FXName_CreatorID_SourceID`, with `T2`, `T3` as UserData for a row's later takes
/// so that names stay unique. The CatID comes from the sheet, and must be on the list.
public struct UCSNaming: Sendable, Equatable {
    /// Who made the sounds, and the library or project they are for: one block each.
    public var creator: String
    public var source: String
    /// The sheet's column of CatIDs; nil: one named CatID, else Category.
    public var categoryColumn: String?
    /// The sheet's column of FXNames; nil: made from the prompt (`UCS.fxName`).
    public var fxNameColumn: String?

    public init(creator: String, source: String, categoryColumn: String? = nil, fxNameColumn: String? = nil) {
        self.creator = creator
        self.source = source
        self.categoryColumn = categoryColumn
        self.fxNameColumn = fxNameColumn
    }

    /// The column the CatIDs are read from, among the batch's `columns`.
    public func catIDColumn(in columns: [String]) -> String? {
        let wanted = categoryColumn.map { [$0] } ?? ["CatID", "Category"]
        for name in wanted {
            if let found = columns.first(where: { $0.lowercased() == name.lowercased() }) { return found }
        }
        return nil
    }

    func value(of column: String, for sound: LibrarySound) -> String? {
        sound.columns.first { $0.name.lowercased() == column.lowercased() }?.value.trimmed
    }

    /// The sound's FXName: from its column, else made from its prompt.
    func fxName(for sound: LibrarySound) -> String {
        let given = fxNameColumn.flatMap { value(of: $0, for: sound) }.map(UCS.fxName) ?? ""
        return given.isEmpty ? UCS.fxName(sound.prompt) : given
    }

    /// The sound's name, without its extension, for a CatID found on the list.
    func name(for sound: LibrarySound, catID: String) -> String {
        [catID, fxName(for: sound), creator, source].joined(separator: "_") + (sound.take > 1 ? "_T\(sound.take)" : "")
    }

    /// What its file says of it, for a CatID of the list.
    func fields(for sound: LibrarySound, category: UCSCategory) -> SoundTags.UCSFields {
        SoundTags.UCSFields(
            category: category.category, subCategory: category.subCategory, catID: category.catID,
            fxName: fxName(for: sound), keywords: category.keywords(in: sound.prompt).joined(separator: ", "),
            designer: creator, library: source, show: sound.batch)
    }

    /// What is wrong with the CatIDs of `sounds`, row by row: none given, or one not on the
    /// list with the nearest that are; nothing when every sound has a CatID of the list.
    func problems(_ sounds: [LibrarySound], columns: [String]) -> [String] {
        guard let column = catIDColumn(in: columns) else {
            return [
                "the sheet has no column \(categoryColumn ?? "CatID or Category") to take UCS CatIDs from "
                    + "(its columns: \(columns.isEmpty ? "none of its own" : columns.joined(separator: ", "))); "
                    + "name one with --category-column"
            ]
        }
        return sounds.compactMap { sound in
            let row = "\(sound.row) take \(sound.take)"
            guard let given = value(of: column, for: sound), !given.isEmpty else {
                return "\(row) has no CatID in its \(column) column"
            }
            guard UCS.category(given) == nil else { return nil }
            let near = UCS.nearest(given).map { "\($0.catID) (\($0.category) / \($0.subCategory))" }
            return "\(given) (\(row)) is not a UCS CatID"
                + (near.isEmpty ? "" : "; did you mean \(near.joined(separator: " or "))?")
        }
    }
}
