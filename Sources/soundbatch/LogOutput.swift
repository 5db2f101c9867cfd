import ArgumentParser
import Foundation
import Logging
import SoundbatchCore

/// How log lines look: for a person on a terminal, the message alone (warnings and errors
/// marked, in colour); for machines and files, a timestamp and level first, or one JSON
/// object a line.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// swift-log's handler for soundbatch's standard error, above the live progress line.
struct LogOutput: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let format: LogFormat
    /// A person is reading: no timestamps, no module tags.
    let forPeople: Bool

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        LiveLine.shared.writeAbove(
            Self.line(
                level: event.level, message: "\(event.message)", metadata: all, format: format,
                forPeople: forPeople, at: Date()) + "\n")
    }

    static func line(
        level: Logger.Level, message: String, metadata: Logger.Metadata, format: LogFormat, forPeople: Bool,
        at time: Date
    ) -> String {
        let stamp = Timestamp.string(time)
        switch format {
        case .json:
            var object: [String: String] = ["time": stamp, "level": level.rawValue, "message": message]
            for (key, value) in metadata { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        case .text where forPeople:
            switch level {
            case .warning: return "\u{1B}[33mwarning:\u{1B}[0m " + message
            case .error, .critical: return "\u{1B}[31merror:\u{1B}[0m " + message
            default: return message
            }
        case .text:
            let tags =
                metadata.isEmpty
                ? "" : " " + metadata.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: " ")
            return "\(stamp) \(level.rawValue) \(message)\(tags)"
        }
    }
}
