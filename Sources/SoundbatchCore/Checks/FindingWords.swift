import Foundation

/// What a check found of a take, in words a person reads on the review page and in
/// messages: "silent", "clipped at +3.7 dBTP", "0.3 s of 3 s asked", "same as take 1".
public struct FindingWords: Sendable {
    public var findings: Set<Finding>
    public var seconds: Double?
    public var asked: Int?
    public var truePeak: Double?
    public var samplePeak: Double?
    public var dcOffset: Double?
    public var gap: Double?
    public var duplicateOf: Int?
    public var problem: String?

    public var words: [String] {
        findings.sorted().map { finding in
            switch finding {
            case .silent: return "silent"
            case .clipped: return "clipped" + ((truePeak ?? samplePeak).map { " at \(Self.signed($0)) dBTP" } ?? "")
            case .short:
                guard let seconds, let asked else { return "short" }
                return "\(Self.plain(seconds)) s of \(asked) s asked"
            case .dcOffset: return "DC offset" + (dcOffset.map { " at \(Self.signed($0)) dBFS" } ?? "")
            case .duplicate: return duplicateOf.map { "same as take \($0)" } ?? "the same as an earlier take"
            case .gap: return (gap.map { "\(Self.plain($0)) s" } ?? "a long stretch") + " of silence inside"
            case .unreadable: return "unreadable" + (problem.map { ": \($0)" } ?? "")
            }
        }
    }

    /// One decimal, signed: +3.7, -20.0.
    static func signed(_ value: Double) -> String { String(format: "%+.1f", value) }

    /// One decimal at most: 0.3, 3.
    static func plain(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(format: "%.1f", rounded)
    }
}
