import Foundation
import SoundbatchAudio

/// Which sounds an export takes and what it calls them.
public struct LibraryPlan: Sendable {
    public struct Entry: Sendable {
        public var sound: LibrarySound
        /// Its sound: a file on this machine, or kept in the ledger.
        public var source: SavedSound
        /// Its path in the library, extension included.
        public var file: String

        /// Its UCS fields, when named by UCS.
        public var ucs: SoundTags.UCSFields?
        /// CatIDs proposed for it, its row having none of the list (`--suggest-category`), best first.
        public var suggested: [(category: UCSCategory, because: [String])] = []

        var tags: SoundTags {
            var tags = SoundTags(
                title: sound.keyedByContent ? sound.row : sound.rowKey, description: sound.prompt, take: sound.take,
                project: sound.batch, taskID: sound.taskID, made: sound.completedAt, columns: sound.columns)
            tags.ucs = ucs
            return tags
        }
    }

    public var choice: LibraryExport.Choice
    /// The choice was the default one (kept when the batch has verdicts, else all).
    public var chosenByDefault: Bool
    /// The batch's completed sounds.
    public var completed: Int
    public var columns: [String]
    public var sounds: [Entry] = []
    /// Chosen, but their sound was never saved; or it is neither on this machine nor kept in
    /// the ledger (`store`, on PostgreSQL).
    public var withoutFile: [LibrarySound] = []
    public var notHere: [LibrarySound] = []
    public var store: (any SoundStore)?
    /// Chosen, but left out: a check found them wrong (`includeFlagged` takes them).
    public var flagged: [LibrarySound] = []
    /// Names another sound had already, given a suffix (`door_1-2.wav`).
    public var suffixed: [String] = []
    /// Whether CatIDs were proposed (`--suggest-category`), and for how many sounds.
    public var suggesting = false
    public var suggestedFor: Int { sounds.filter { !$0.suggested.isEmpty }.count }

    init(choice: LibraryExport.Choice, chosenByDefault: Bool, completed: Int, columns: [String]) {
        self.choice = choice
        self.chosenByDefault = chosenByDefault
        self.completed = completed
        self.columns = columns
    }
}

/// What an export did.
public struct LibraryReport: Sendable {
    public var plan: LibraryPlan
    public var written = 0
    public var alreadyRight = 0
    /// Files in the way that soundbatch did not write (or that changed since): left as they are.
    public var leftAlone: [String] = []
    public var failed: [(file: String, reason: String)] = []
    /// Turned up less than the loudness target asked, so that no true peak passed the ceiling.
    public var heldByCeiling: [String] = []
    /// Not reached: the export was stopped first.
    public var notReached = 0
    /// Sounds converted to the rate asked, by their own rate.
    public var converted: [Int: Int] = [:]
}
