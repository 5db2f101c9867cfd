import Foundation

public enum ReportFormat: String, Sendable, CaseIterable {
    case table, csv, json, markdown, html
}

/// Buffered text output to a file descriptor, so a million-row export stays fast and flat.
public final class TextOutput {
    private let fd: Int32
    private var buffer: [UInt8] = []

    public init(fd: Int32) {
        self.fd = fd
        buffer.reserveCapacity(1 << 16)
    }

    public func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { try flush() }
    }

    public func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let written = buffer[offset...].withUnsafeBytes { writeBytes(fd, $0) }
            if written < 0 {
                if errno == EINTR { continue }
                throw ReportError.cannotWrite(String(cString: strerror(errno)))
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

private func writeBytes(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
    write(fd, bytes.baseAddress, bytes.count)
}

public enum ReportError: Error, CustomStringConvertible {
    case cannotWrite(String)
    public var description: String {
        switch self {
        case let .cannotWrite(reason): "cannot write the report: \(reason)"
        }
    }
}
