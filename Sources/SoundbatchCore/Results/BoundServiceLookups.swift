import Foundation
import Synchronization

/// Looks tasks up where their batches run, one client per service, for the webhook
/// receiver: the API with the user's key, or the built-in sandbox on its port.
public final class BoundServiceLookups: CallbackConfirmer {
    private let ledger: any BatchMemory
    private let key: KeySource
    private let clients = Mutex<[String: MusicGPTClient]>([:])

    /// Runs `body` with lookups over `ledger`'s batches, then closes their connections.
    public static func with<T>(
        ledger: any BatchMemory, key: @escaping KeySource, _ body: (BoundServiceLookups) async throws -> T
    ) async throws -> T {
        let lookups = BoundServiceLookups(ledger: ledger, key: key)
        return try await withCleanUp(lookups.shutdown) { try await body(lookups) }
    }

    private init(ledger: any BatchMemory, key: @escaping KeySource) {
        self.ledger = ledger
        self.key = key
    }

    public func lookUp(taskID: String, batchID: Int64) async -> StatusOutcome {
        let service: ServiceAddress
        do {
            guard let bound = try await ledger.settings(ofBatch: batchID)?.service else {
                return .retryable(status: nil, error: "the batch has no service on record", retryAfter: nil)
            }
            service = bound
        } catch {
            return .retryable(status: nil, error: "\(error)", retryAfter: nil)
        }
        let baseURL: String
        let key: APIKey
        switch service {
        case let .api(url):
            guard let userKey = try? self.key() else {
                return .retryable(
                    status: nil, error: "no API key (set MUSICGPT_API_KEY or --api-key-file)", retryAfter: nil)
            }
            (baseURL, key) = (url, userKey)
        case let .sandbox(port, _):
            (baseURL, key) = ("http://127.0.0.1:\(port)", .sandbox)
        }
        let client = clients.withLock { clients in
            if let client = clients[baseURL] { return client }
            let client = MusicGPTClient(baseURL: baseURL, key: key, timeout: .seconds(5), connections: 2)
            clients[baseURL] = client
            return client
        }
        return await client.status(taskID: taskID)
    }

    private func shutdown() async {
        for client in clients.withLock({ Array($0.values) }) { await client.shutdown() }
    }
}
