import Foundation

/// One record of a CSV file.
public struct CSVRecord: Sendable, Equatable {
    /// The fields, decoded as UTF-8 (lossily when `problem` says the bytes were not UTF-8).
    public var fields: [String]
    /// The physical line, counted from 1, on which the record starts.
    public var line: Int
    /// What is wrong with this record alone, if anything; the rest of the file can still be read.
    public var problem: String?
}

/// Errors that stop reading the file: what follows cannot be trusted.
public enum CSVError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case cannotRead(path: String, reason: String)
    case unterminatedQuote(line: Int)
    case fieldTooLong(line: Int, limit: Int)
    case recordTooLong(line: Int, limit: Int)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): "cannot open \(path): \(reason)"
        case let .cannotRead(path, reason): "cannot read \(path): \(reason)"
        case let .unterminatedQuote(line):
            "\(line): a quoted field opens here and is never closed; "
                + "close it with \" (a quote inside a quoted field is written \"\")"
        case let .fieldTooLong(line, limit):
            "\(line): a field in the record starting here is longer than \(limit / (1 << 20)) MiB; "
                + "is a quote left open, or is this not a CSV file?"
        case let .recordTooLong(line, limit):
            "\(line): the record starting here is longer than \(limit / (1 << 20)) MiB; is this a CSV file?"
        }
    }

    /// The line the error points at, if it points at one.
    public var line: Int? {
        switch self {
        case .cannotOpen, .cannotRead: nil
        case let .unterminatedQuote(line), let .fieldTooLong(line, _), let .recordTooLong(line, _): line
        }
    }
}
