/// The user's API key. It never appears in a description, a log line or the ledger.
public struct APIKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    let value: String

    public init?(_ value: String) {
        let trimmed = value.trimmed
        guard !trimmed.isEmpty else { return nil }
        self.value = trimmed
    }

    public var description: String { "<api key>" }
    public var debugDescription: String { "<api key>" }
}

extension APIKey {
    /// The key soundbatch's built-in sandbox is sent: it takes any.
    public static let sandbox = APIKey("sandbox-key")!
}
