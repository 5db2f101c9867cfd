/// Where a run's requests go: the MusicGPT API, or a stand-in for it.
public protocol ServiceEndpoint: Sendable {
    /// Runs `body` with the service's base URL and the key for it, for as long as `body` runs.
    func withService<T: Sendable>(_ body: (_ baseURL: String, _ key: APIKey) async throws -> T) async throws -> T
}

/// The service at a base URL, with the user's key.
public struct RemoteService: ServiceEndpoint {
    public var baseURL: String
    public var key: APIKey

    public init(baseURL: String, key: APIKey) {
        self.baseURL = baseURL
        self.key = key
    }

    public func withService<T: Sendable>(_ body: (String, APIKey) async throws -> T) async throws -> T {
        try await body(baseURL, key)
    }
}
