/// Runs `body`, then awaits `cleanUp` whether `body` threw or not (a `defer` cannot await):
/// the scoped lifecycles of the HTTP clients, `withClient { }` and `withDownloader { }`.
func withCleanUp<T>(_ cleanUp: () async -> Void, _ body: () async throws -> T) async throws -> T {
    let result: Result<T, Error>
    do { result = .success(try await body()) } catch { result = .failure(error) }
    await cleanUp()
    return try result.get()
}
