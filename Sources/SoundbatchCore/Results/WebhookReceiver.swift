import Foundation
import Hummingbird
import Logging
import NIOCore
import Serving

/// Receives the service's completion callbacks and records them in the ledger exactly as
/// a status look would. A payload for an unknown task, a malformed body or one over
/// 64 KB is answered 4xx, logged, and changes nothing.
public struct WebhookReceiver: Sendable {
    public static let maxBodyBytes = 64 * 1024

    /// What one callback did, for the log and for tests.
    public enum Event: Sendable, Equatable {
        case recorded(jobID: Int64, taskID: String, state: JobState, changed: Bool)
        case refused(status: Int, reason: String)
    }

    let ledger: any StatusLedger
    let path: String

    public init(ledger: any StatusLedger, path: String = "/hook") {
        self.ledger = ledger
        self.path = path.hasPrefix("/") ? path : "/" + path
    }

    /// Handles one callback body: the status to answer and what happened.
    public func handle(body: ByteBuffer?) async throws -> (status: HTTPResponse.Status, event: Event) {
        guard let body else {
            return (.contentTooLarge, .refused(status: 413, reason: "body over \(Self.maxBodyBytes / 1024) KB"))
        }
        guard let conversion = try? JSONDecoder().decode(WireConversion.self, from: Data(body.readableBytesView)),
            let remote = conversion.remoteStatus, let taskID = remote.taskID?.trimmed, !taskID.isEmpty
        else {
            return (.badRequest, .refused(status: 400, reason: "not a JSON object with task_id and status"))
        }
        guard let jobID = try await ledger.jobID(taskID: taskID) else {
            return (.notFound, .refused(status: 404, reason: "no job in the ledger has task \(taskID)"))
        }
        let (state, changed) = try await ledger.recordStatus(jobID: jobID, remote, now: Date())
        return (.ok, .recorded(jobID: jobID, taskID: taskID, state: state, changed: changed))
    }

    /// Listens for callbacks for as long as `body` runs, then stops gracefully. `body` gets
    /// the callback URL; `onEvent` hears every callback.
    public func serve<Value>(
        host: String, port: Int, logger: Logger,
        onEvent: @escaping @Sendable (Event) -> Void,
        while body: (_ url: String) async throws -> Value
    ) async throws -> Value {
        let router = Router()
        router.post(RouterPath(path)) { request, _ -> Response in
            let body = request.body
            let bytes = try? await body.collect(upTo: Self.maxBodyBytes)
            let (status, event) = try await self.handle(body: bytes)
            onEvent(event)
            let answer: [String: Any] =
                switch event {
                case let .recorded(_, _, state, changed): ["ok": true, "state": state.rawValue, "changed": changed]
                case let .refused(_, reason): ["ok": false, "error": reason]
                }
            let data = (try? JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys])) ?? Data()
            return Response(
                status: status, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        return try await serving(
            router.buildResponder(), host: host, port: port, serverName: "soundbatch-webhook",
            logger: logger
        ) { boundPort in
            try await body("http://\(host):\(boundPort)\(path)")
        }
    }
}
