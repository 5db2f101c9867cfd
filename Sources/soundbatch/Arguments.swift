import ArgumentParser
import Foundation
import SoundbatchCore

/// A length of time, written the same way in every option: bare seconds (`30`, `2.5`), or
/// with a unit: `ms`, `s`, `m` or `h` (`300ms`, `30s`, `15m`, `1h`).
struct DurationArgument: ExpressibleByArgument, Sendable {
    var duration: Duration

    init(_ duration: Duration) { self.duration = duration }

    init?(argument: String) {
        let text = argument.trimmed.lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("", 1)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), number >= 0,
                number.isFinite
            else {
                continue
            }
            duration = .milliseconds(Int64((number * scale * 1000).rounded()))
            return
        }
        return nil
    }

    var defaultValueDescription: String {
        let milliseconds = Int(duration.seconds * 1000)
        if milliseconds % 3_600_000 == 0 && milliseconds > 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 && milliseconds > 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}

/// Where a server listens: `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` for loopback.
struct ListenAddress: ExpressibleByArgument, Sendable {
    var host: String
    var port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"), let port = Int(argument[argument.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        let host = String(argument[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        self.host = host.isEmpty ? "127.0.0.1" : host
        self.port = port
    }

    var defaultValueDescription: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A comma-separated list of job states (`--state failed,generation_failed`), read once;
/// each command says in `validate()` which states it takes.
struct StatesArgument: ExpressibleByArgument, Sendable {
    var states: Set<JobState>
    /// Names that are no state at all.
    var unknown: [String]

    init(argument: String) {
        let names = argument.split(separator: ",").map { String($0).trimmed.lowercased() }.filter { !$0.isEmpty }
        states = Set(names.compactMap(JobState.init(rawValue:)))
        unknown = names.filter { JobState(rawValue: $0) == nil }
    }

    /// Throws unless every state named is one of `allowed`, naming them.
    func check(_ option: String, allowed: [JobState]) throws {
        if let wrong = unknown.first ?? states.first(where: { !allowed.contains($0) })?.rawValue {
            throw ValidationError(
                "\(option): \"\(wrong)\" is not one of \(allowed.map(\.rawValue).joined(separator: ", ")).")
        }
    }
}

/// A field separator: comma, semicolon or tab (`--delimiter`).
struct DelimiterArgument: ExpressibleByArgument, Sendable {
    var byte: UInt8

    init?(argument: String) {
        switch argument.lowercased() {
        case ",", "comma": byte = UInt8(ascii: ",")
        case ";", "semicolon": byte = UInt8(ascii: ";")
        case "\t", "\\t", "tab": byte = UInt8(ascii: "\t")
        default: return nil
        }
    }

    static var allValueStrings: [String] { ["comma", "semicolon", "tab"] }
}

/// A date (YYYY-MM-DD, UTC) or an ISO 8601 time bounding a report (`--since`, `--until`).
struct TimeBoundArgument: ExpressibleByArgument, Sendable {
    var time: Date
    /// A whole day was given: `--until` then includes it.
    var isDay: Bool

    init?(argument: String) {
        let text = argument.trimmed
        if let day = try? Date.ISO8601FormatStyle().year().month().day().parse(text) {
            (time, isDay) = (day, true)
            return
        }
        for format in [Date.ISO8601FormatStyle(includingFractionalSeconds: true), Date.ISO8601FormatStyle()] {
            if let time = try? format.parse(text) {
                (self.time, isDay) = (time, false)
                return
            }
        }
        return nil
    }

    /// As the ledger's sortable UTC text; a bare day ends with it when `endOfDay`.
    func ledgerText(endOfDay: Bool) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true)
            .format(isDay && endOfDay ? time.addingTimeInterval(86_400) : time)
    }
}
