import Crypto
import Foundation
import SoundbatchAudio
import Synchronization

/// One sound of a batch as a library takes it: a completed take, with what names and
/// describes it.
public struct LibrarySound: Sendable, Equatable {
    public var batch: String
    public var jobID: Int64
    public var rowKey: String
    public var keyedByContent: Bool
    public var line: Int
    public var take: Int
    /// The prompt that made this take.
    public var prompt: String
    public var verdict: Verdict?
    /// Charged, when the service said.
    public var credits: Double?
    public var taskID: String
    /// Where its sound was saved; nil when it was not.
    public var source: String?
    public var completedAt: Date?
    /// The row's own columns, in the sheet's order.
    public var columns: [SoundTags.Column]
    /// What a check found wrong with it.
    public var findings: Set<Finding> = []

    /// What names the row for a person: its id, else "line N".
    public var row: String { keyedByContent ? "line \(line)" : rowKey }

    /// The value of its own column `name`: written so, else in another case.
    public func column(_ name: String) -> String? {
        (columns.first { $0.name == name } ?? columns.first { $0.name.lowercased() == name.lowercased() })?.value
    }
}

extension LibrarySound {
    /// From a line of the per-job report (`forEachReportLine`), whose own columns are `keys`.
    init(line job: ReportJob, keys: [String]) {
        func text(_ column: String) -> String? {
            switch job.value(column) {
            case let .text(text): text
            case let .number(number, _): String(Int(number))
            case .none: nil
            }
        }
        func number(_ column: String) -> Double? {
            if case let .number(number, _) = job.value(column) { return number }
            return nil
        }
        batch = text("batch") ?? ""
        jobID = job.jobID
        rowKey = text("row_key") ?? ""
        keyedByContent = job.keyedByContent
        line = Int(number("source_line") ?? 0)
        take = Int(number("take") ?? 1)
        prompt = text("prompt") ?? ""
        verdict = text("verdict").flatMap(Verdict.init(rawValue:))
        credits = number("conversion_cost")
        taskID = text("task_id") ?? ""
        source = text("downloaded_file")
        completedAt = Timestamp.date(text("completed_at"))
        findings = Finding.set(fromText: text("findings"))
        let own = job.values.dropFirst(ReportJob.columns.count)
        columns = zip(keys, own).compactMap { name, value in
            switch value {
            case let .text(text) where !text.isEmpty: SoundTags.Column(name: name, value: text)
            case let .number(number, decimals):
                SoundTags.Column(name: name, value: ReportRenderer.decimal(number, places: decimals))
            default: nil
            }
        }
    }
}

/// `soundbatch export`: a batch's sounds written as a library, named from the sheet, made
/// even in loudness and in the format asked, with the row's words inside each file and a
/// manifest beside them. Safe to repeat: what is right already is left as it is.
public struct LibraryExport: Sendable {
    public enum Choice: String, Sendable, CaseIterable {
        /// Sounds kept in the review, or with `mark keep`.
        case kept
        /// Every sound but those rejected.
        case unrejected
        /// Every completed sound.
        case all
    }

    public var batch: String
    /// The library's folder, absolute.
    public var folder: String
    public var template = NameTemplate.standard
    /// Names as the Universal Category System has them, in place of `template`.
    public var ucs: UCSNaming?
    public var ascii = false
    /// Propose CatIDs in the manifest for sounds whose row has none of the UCS list, from
    /// their prompts and the list's synonyms (never into names).
    public var suggestCategories = false
    /// The sheet's column of CatIDs, for UCS names and proposals; nil: CatID, else Category.
    public var categoryColumn: String?
    /// Which sounds; nil: the kept ones when the batch has any verdict, else all.
    public var only: Choice?
    public var rendering = Rendering()
    /// Replace files in the way that soundbatch did not write.
    public var force = false
    /// Sounds a check found wrong go too (else they are left out, and the summary says so).
    public var includeFlagged = false
    public var concurrency = max(ProcessInfo.processInfo.activeProcessorCount, 1)

    public init(batch: String, folder: String) {
        self.batch = batch
        self.folder = folder
    }

    static let manifestName = "manifest.csv"
    /// What each file was made from, so that an export again leaves alone what is right.
    static let recordsName = ".soundbatch-export.jsonl"

    /// Which sounds go to the library, and their names.
    public func plan(_ ledger: any LedgerStore) async throws -> LibraryPlan {
        let batchID = try await ledger.batchID(named: batch)
        let query = ReportQuery(batch: batch)
        let keys = try await ledger.metadataKeys(query)
        let unknown = template.unknownFields(columns: keys)
        guard unknown.isEmpty else { throw LibraryError.unknownFields(unknown, columns: keys) }
        var completed: [LibrarySound] = []
        try await ledger.forEachReportLine(query, metadataKeys: keys) { line in
            guard case .text(JobState.completed.rawValue) = line.value("state") else { return }
            completed.append(LibrarySound(line: line, keys: keys))
        }
        let choice = only ?? (completed.contains { $0.verdict != nil } ? .kept : .all)
        var chosen = completed.filter { sound in
            switch choice {
            case .kept: sound.verdict == .kept
            case .unrejected: sound.verdict != .rejected
            case .all: true
            }
        }
        var plan = LibraryPlan(choice: choice, chosenByDefault: only == nil, completed: completed.count, columns: keys)
        plan.store = ledger.soundStore
        var saved: [String: SavedSound] = [:]
        for sound in try await ledger.savedSounds(batchID: batchID) { saved["\(sound.jobID)/\(sound.take)"] = sound }
        if !includeFlagged {
            plan.flagged = chosen.filter { !$0.findings.isEmpty }
            chosen.removeAll { !$0.findings.isEmpty }
        }
        let catIDColumn = UCSNaming.catIDColumn(asked: categoryColumn, in: keys)
        if let ucs {
            let problems = ucs.problems(chosen, column: catIDColumn, asked: categoryColumn, columns: keys)
            guard problems.isEmpty else { throw LibraryError.notUCS(problems) }
        } else {
            let blanks = chosen.compactMap { sound in
                template.emptyFields(for: sound).first.map { (field: $0, row: "\(sound.row) take \(sound.take)") }
            }
            guard blanks.isEmpty else { throw LibraryError.emptyFields(template.text, blanks) }
        }
        plan.suggesting = suggestCategories
        var taken: Set<String> = [LibraryExport.manifestName.lowercased()]
        for sound in chosen {
            guard let source = saved["\(sound.jobID)/\(sound.take)"], sound.source?.isEmpty == false else {
                plan.withoutFile.append(sound)
                continue
            }
            guard source.pathHere != nil || source.kept else {
                plan.notHere.append(sound)
                continue
            }
            let category = catIDColumn.flatMap { sound.column($0)?.trimmed }.flatMap(UCS.category)
            var fields: SoundTags.UCSFields?
            let stem: String
            if let ucs, let category {
                stem = LibraryNames.safe(ucs.name(for: sound, catID: category.catID), ascii: ascii)
                fields = ucs.fields(for: sound, category: category)
            } else {
                stem = template.path(for: sound, ascii: ascii)
            }
            let ext = "." + rendering.format.fileExtension
            var name = stem + ext
            var suffix = 1
            while taken.contains(FileNames.caseKey(name)) {
                suffix += 1
                name = "\(stem)-\(suffix)\(ext)"
            }
            if suffix > 1 { plan.suffixed.append(name) }
            taken.insert(FileNames.caseKey(name))
            var entry = LibraryPlan.Entry(sound: sound, source: source, file: name, ucs: fields)
            if suggestCategories, category == nil { entry.suggested = UCS.suggestions(for: sound.prompt) }
            plan.sounds.append(entry)
        }
        return plan
    }

    /// Writes the plan's files, `concurrency` at a time, each atomically; then the manifest.
    /// `progress` hears each file done. A stop (Ctrl-C) starts no new file.
    public func run(
        _ plan: LibraryPlan, stop: StopSignal,
        progress: @escaping @Sendable (_ done: Int, _ total: Int) -> Void = { _, _ in }
    ) async throws -> LibraryReport {
        do {
            try makeWritableFolder(folder)
        } catch {
            throw LibraryError.folder(error.path, reason: error.reason)
        }
        let records = try RecordBook(path: (folder as NSString).appendingPathComponent(Self.recordsName))
        var report = LibraryReport(plan: plan)
        var outcomes = [FileOutcome?](repeating: nil, count: plan.sounds.count)
        try await SoundFiles.with(store: plan.store) { files in
            try await withThrowingTaskGroup(of: (Int, FileOutcome).self) { group in
                var next = 0
                func startNext() {
                    guard next < plan.sounds.count, !stop.isStopped else { return }
                    let index = next
                    let entry = plan.sounds[index]
                    next += 1
                    group.addTask {
                        do {
                            // A sound another machine saved is read from the ledger, once for its file.
                            return try await files.withFile(entry.source) { source in
                                (index, self.export(entry, from: source, records: records))
                            }
                        } catch {
                            return (index, .failed("\(error)"))
                        }
                    }
                }
                for _ in 0..<concurrency { startNext() }
                var done = 0
                while let (index, outcome) = try await group.next() {
                    outcomes[index] = outcome
                    done += 1
                    progress(done, plan.sounds.count)
                    startNext()
                }
            }
        }
        var lines: [ManifestLine] = []
        for rendered in outcomes.compactMap({ $0?.rendered }) {
            guard let from = rendered.sourceRate, let to = rendering.sampleRate, from != to else { continue }
            report.converted[from, default: 0] += 1
        }
        for (entry, outcome) in zip(plan.sounds, outcomes) {
            switch outcome {
            case let .written(rendered)?:
                report.written += 1
                lines.append(ManifestLine(entry: entry, rendered: rendered))
            case let .alreadyRight(rendered)?:
                report.alreadyRight += 1
                lines.append(ManifestLine(entry: entry, rendered: rendered))
            case .leftAlone?:
                report.leftAlone.append(entry.file)
            case let .failed(reason)?:
                report.failed.append((entry.file, reason))
            case nil:
                report.notReached += 1
            }
            if case let .written(rendered)? = outcome, rendered.heldByCeiling {
                report.heldByCeiling.append(entry.file)
            }
            if case let .alreadyRight(rendered)? = outcome, rendered.heldByCeiling {
                report.heldByCeiling.append(entry.file)
            }
        }
        try records.compact(keeping: Set(plan.sounds.map(\.file)))
        if report.notReached == 0 {
            try Manifest.write(
                lines, columns: plan.columns, suggesting: plan.suggesting,
                to: (folder as NSString).appendingPathComponent(Self.manifestName))
        }
        return report
    }

    enum FileOutcome: Sendable {
        case written(Rendered)
        case alreadyRight(Rendered)
        /// A file is there that soundbatch did not write, or that was changed since.
        case leftAlone
        case failed(String)

        var rendered: Rendered? {
            switch self {
            case let .written(rendered), let .alreadyRight(rendered): rendered
            case .leftAlone, .failed: nil
            }
        }
    }

    /// One file: left as it is when right (as recorded, or as rendered again), else written
    /// under a temporary name and renamed into place.
    private func export(_ entry: LibraryPlan.Entry, from source: String, records: RecordBook) -> FileOutcome {
        let destination = (folder as NSString).appendingPathComponent(entry.file)
        do {
            try FileManager.default.createDirectory(
                atPath: (destination as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let tags = entry.tags
            let fingerprint = try Self.fingerprint(source: source, rendering: rendering, tags: tags)
            let record = records.record(for: entry.file)
            let present = FileManager.default.fileExists(atPath: destination)
            let presentHash = present ? try Self.sha256(of: destination) : nil
            if let record, record.fingerprint == fingerprint, record.output == presentHash {
                return .alreadyRight(record.rendered)
            }
            let temporary =
                (destination as NSString).deletingLastPathComponent + "/.\(UUID().uuidString.prefix(8)).part"
            defer { unlink(temporary) }
            let rendered = try rendering.render(source, to: temporary, tags: tags)
            let output = try Self.sha256(of: temporary)
            if let presentHash, presentHash != output {
                // Ours (as recorded) but made otherwise before: replaced; anyone else's: kept.
                guard force || record?.output == presentHash else { return .leftAlone }
            }
            if presentHash != output {
                guard rename(temporary, destination) == 0 else { throw FileError(path: destination, errno: errno) }
            }
            try records.add(Record(file: entry.file, fingerprint: fingerprint, output: output, rendered: rendered))
            return presentHash == output ? .alreadyRight(rendered) : .written(rendered)
        } catch {
            return .failed("\(error)")
        }
    }

    /// What a file is made from: the source's bytes, the settings, the words written in it.
    static func fingerprint(source: String, rendering: Rendering, tags: SoundTags) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var hash = SHA256()
        hash.update(data: Data(try sha256(of: source).utf8))
        hash.update(data: try encoder.encode(rendering))
        hash.update(data: try encoder.encode(tags))
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }

    static func sha256(of path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw FileError(path: path, errno: errno, reading: true)
        }
        defer { try? handle.close() }
        var hash = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hash.update(data: chunk) }
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

/// Why an export cannot start.
public enum LibraryError: Error, CustomStringConvertible, CommandError {
    case unknownFields([String], columns: [String])
    /// Fields that come out empty, with the sounds they leave unnamed.
    case emptyFields(String, [(field: String, row: String)])
    /// The library's folder cannot be made or written.
    case folder(String, reason: String)
    /// `--name ucs`, and sounds without a CatID of the list: what is wrong, row by row.
    case notUCS([String])

    public var exitStatus: ExitStatus {
        switch self {
        case .unknownFields: .usage
        case .emptyFields, .notUCS: .invalidInput
        case .folder: .cannotCreate
        }
    }

    public var description: String {
        switch self {
        case let .unknownFields(fields, columns):
            "the name template uses \(fields.map { "{\($0)}" }.joined(separator: ", ")), which is neither a column of "
                + "the batch (\(columns.isEmpty ? "it has none of its own" : columns.joined(separator: ", "))) nor one of "
                + NameTemplate.builtIn.map { "{\($0)}" }.joined(separator: ", ")
        case let .emptyFields(template, blanks):
            "the name template \(template) leaves {\(blanks[0].field)} empty for "
                + blanks.prefix(5).map(\.row).joined(separator: ", ")
                + (blanks.count > 5 ? " and \(blanks.count - 5) more" : "")
                + "; nothing was written. Fill the column in the sheet and feed it again, or name the files without it"
        case let .notUCS(problems):
            "UCS names need a CatID of the list (v\(UCS.version)) for every sound; nothing was written: "
                + problems.prefix(5).joined(separator: "; ")
                + (problems.count > 5 ? "; and \(problems.count - 5) more" : "")
                + " (an export with --suggest-category, without --name ucs, proposes CatIDs in its manifest)"
        case let .folder(path, reason):
            "cannot make the library's folder \(path): \(reason); choose another with --to, or make it writable"
        }
    }
}

/// What the library's earlier exports made, one JSON line a file, in the library's folder;
/// a later line for a file replaces an earlier one.
struct Record: Codable, Sendable {
    var file: String
    var fingerprint: String
    /// The SHA-256 of the file written.
    var output: String
    var rendered: Rendered
}

final class RecordBook: Sendable {
    let path: String
    private let records: Mutex<[String: Record]>

    init(path: String) throws {
        self.path = path
        var records: [String: Record] = [:]
        if let data = FileManager.default.contents(atPath: path) {
            for line in data.split(separator: UInt8(ascii: "\n")) {
                if let record = try? JSONDecoder().decode(Record.self, from: Data(line)) {
                    records[record.file] = record
                }
            }
        }
        self.records = Mutex(records)
    }

    func record(for file: String) -> Record? { records.withLock { $0[file] } }

    /// Kept at once, so that an export stopped halfway carries on from it.
    func add(_ record: Record) throws {
        let line = try JSONEncoder().encode(record) + Data("\n".utf8)
        try records.withLock { records in
            records[record.file] = record
            let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw FileError(path: path, errno: errno) }
            defer { close(descriptor) }
            _ = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        }
    }

    /// Rewrites the book with one line a file, for the files still in the library's plan.
    func compact(keeping files: Set<String>) throws {
        let lines = records.withLock { records in
            records.values.filter { files.contains($0.file) }.sorted { $0.file < $1.file }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var data = Data()
        for record in lines { data += try encoder.encode(record) + Data("\n".utf8) }
        let file = try AtomicFile(path: path)
        try data.withUnsafeBytes { try file.write($0) }
        try file.commit(sync: false)
    }
}
