import Foundation
import SoundbatchAudio

/// What a check finds wrong with a sound, in the words the reports spell.
public enum Finding: String, Sendable, Codable, CaseIterable, Comparable {
    /// Nothing audible.
    case silent
    /// Driven past full scale.
    case clipped
    /// Clearly shorter than the row asked for.
    case short
    /// Its samples sit off zero.
    case dcOffset = "dc_offset"
    /// The same sound as an earlier take of its row.
    case duplicate
    /// A long silence inside it.
    case gap
    /// It could not be decoded.
    case unreadable

    /// The finding's name as a person reads it: "dc offset".
    public var words: String { rawValue.replacingOccurrences(of: "_", with: " ") }

    public static func < (a: Finding, b: Finding) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Findings as the ledger keeps them: their names, comma-separated, in this order.
    public static func text(_ findings: some Sequence<Finding>) -> String {
        findings.sorted().map(\.rawValue).joined(separator: ",")
    }

    public static func set(fromText text: String?) -> Set<Finding> {
        Set((text ?? "").split(separator: ",").compactMap { Finding(rawValue: String($0)) })
    }
}

/// What a check found of one take: the numbers, and the findings made of them.
public struct TakeCheck: Sendable, Equatable {
    public var measurement: SoundMeasurement?
    public var findings: Set<Finding>
    /// The earlier take of the row it sounds the same as.
    public var duplicateOf: Int?
    /// Why it could not be decoded.
    public var problem: String?

    public init(measurement: SoundMeasurement?, findings: Set<Finding>, duplicateOf: Int? = nil, problem: String? = nil)
    {
        self.measurement = measurement
        self.findings = findings
        self.duplicateOf = duplicateOf
        self.problem = problem
    }

    /// The take's sound at `path`, measured and held to `settings`, against the length its row
    /// asked for; whether it is the same sound as another take of its row is for
    /// `comparedWithRow`, which needs the row's other takes.
    public static func of(_ path: String, settings: CheckSettings, askedSeconds: Int?) -> TakeCheck {
        let measurement: SoundMeasurement
        do {
            measurement = try SoundFile(reading: path).measure(silence: settings.silence)
        } catch let error as SoundFileError {
            return TakeCheck(measurement: nil, findings: [.unreadable], problem: error.reason)
        } catch {
            return TakeCheck(measurement: nil, findings: [.unreadable], problem: "\(error)")
        }
        return judged(measurement, settings: settings, askedSeconds: askedSeconds)
    }

    /// The findings `settings` make of a measurement, but for `duplicate`.
    public static func judged(_ m: SoundMeasurement, settings: CheckSettings, askedSeconds: Int?) -> TakeCheck {
        var findings = Set<Finding>()
        let silent = (m.integrated ?? -.infinity) < settings.silentBelow
        if silent { findings.insert(.silent) }
        if m.overs >= settings.clippedSamples || m.flatRuns >= settings.clippedSamples { findings.insert(.clipped) }
        if let asked = askedSeconds, asked > 0, m.seconds < settings.shortBelow * Double(asked) {
            findings.insert(.short)
        }
        if let dc = m.dcOffset, dc >= settings.dcOffsetAbove { findings.insert(.dcOffset) }
        if !silent, m.longestGap >= settings.gapOver { findings.insert(.gap) }
        return TakeCheck(measurement: m, findings: findings)
    }

    /// This check of take `take`, held against the row's other takes checked already (their
    /// numbers and fingerprints, silent ones left out): a duplicate of the first earlier one
    /// that is the same sound, and the later ones that are the same sound as this one (a
    /// later take may finish, and be checked, first). A silent take is the copy of nothing.
    public func comparedWithRow(
        take: Int, others: [(take: Int, fingerprint: [UInt8])], settings: CheckSettings
    ) -> (check: TakeCheck, laterCopies: [Int]) {
        var check = self
        check.findings.remove(.duplicate)
        check.duplicateOf = nil
        guard let fingerprint = measurement?.fingerprint, !findings.contains(.silent) else { return (check, []) }
        let same = others.filter {
            $0.take != take && SoundMeasurement.sameSound($0.fingerprint, fingerprint, within: settings.duplicateWithin)
        }.map(\.take).sorted()
        if let original = same.first, original < take {
            check.findings.insert(.duplicate)
            check.duplicateOf = original
        }
        return (check, same.filter { $0 > take })
    }
}
