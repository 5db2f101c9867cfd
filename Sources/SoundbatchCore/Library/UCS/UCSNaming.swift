import Foundation
import SoundbatchAudio

/// `export --name ucs`: files named as the Universal Category System has them,
/// `CatID_FXName_CreatorID_SourceID`, with `T2`, `T3` as UserData for a row's later takes
/// so that names stay unique. The CatID comes from the sheet, and must be on the list.
public struct UCSNaming: Sendable, Equatable {
    /// Who made the sounds, and the library or project they are for: one block each.
    public var creator: String
    public var source: String
    /// The sheet's column of FXNames; nil: made from the prompt (`UCS.fxName`).
    public var fxNameColumn: String?

    public init(creator: String, source: String, fxNameColumn: String? = nil) {
        self.creator = creator
        self.source = source
        self.fxNameColumn = fxNameColumn
    }

    /// The column CatIDs are read from, among the batch's `columns` (any case): the one
    /// `asked` for, else CatID, else Category.
    public static func catIDColumn(asked: String?, in columns: [String]) -> String? {
        for name in asked.map({ [$0] }) ?? ["CatID", "Category"] {
            if let found = columns.first(where: { $0.lowercased() == name.lowercased() }) { return found }
        }
        return nil
    }

    /// The sound's FXName: from its column, else made from its prompt.
    func fxName(for sound: LibrarySound) -> String {
        let given = fxNameColumn.flatMap { sound.column($0)?.trimmed }.map(UCS.fxName) ?? ""
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

    /// What is wrong with the CatIDs of `sounds`, in `column` (the one `asked` for, found
    /// among the batch's `columns`), row by row: none given, or one not on the list with the
    /// nearest that are; nothing when every sound has a CatID of the list.
    func problems(_ sounds: [LibrarySound], column: String?, asked: String?, columns: [String]) -> [String] {
        guard let column else {
            return [
                "the sheet has no column \(asked ?? "CatID or Category") to take UCS CatIDs from "
                    + "(its columns: \(columns.isEmpty ? "none of its own" : columns.joined(separator: ", "))); "
                    + "name one with --category-column"
            ]
        }
        return sounds.compactMap { sound in
            let row = "\(sound.row) take \(sound.take)"
            guard let given = sound.column(column)?.trimmed, !given.isEmpty else {
                return "\(row) has no CatID in its \(column) column"
            }
            guard UCS.category(given) == nil else { return nil }
            let near = UCS.nearest(given).map { "\($0.catID) (\($0.category) / \($0.subCategory))" }
            return "\(given) (\(row)) is not a UCS CatID"
                + (near.isEmpty ? "" : "; did you mean \(near.joined(separator: " or "))?")
        }
    }
}
