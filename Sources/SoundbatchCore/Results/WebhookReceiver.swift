import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import Serving
import Synchronization

/// Lets callbacks in while a run follows its tasks: one let in is handled whole (its event
/// heard) before `leave`.
public protocol CallbackDoor: Sendable {
    /// Whether a callback may come in now.
    func enter() -> Bool
    func leave()
}

/// Looks a task up at the service its batch runs at, to confirm what a callback says.
public protocol CallbackConfirmer: Sendable {
    func lookUp(taskID: String, batchID: Int64) async -> StatusOutcome
}

/// Receives the service's completion callbacks. A callback is only a hint: anyone who can
/// reach the port can post one. Before anything is recorded, the task is looked up at the
/// service its batch runs at, and what that status answer says is recorded, exactly as a
/// tracker's look would be; nothing the callback's body says is written, and nothing is
/// fetched from a URL it names. A callback that cannot be confirmed is answered 503; one
/// for an unknown task, a malformed body or one over 64 KB is answered 4xx. All of those
/// change nothing.
///
/// A callback whose URL carries a request's own token (`CallbackToken`, put there by a run
/// that asked this receiver which ledger it writes to) settles that request's job when the
/// ledger does not know the task: a request that got no answer made it, so the job is not
/// in doubt any more. A token no request carried is no more than any callback: a hint.
public struct WebhookReceiver: Sendable {
    public static let maxBodyBytes = 64 * 1024

    /// What one callback did, for the log and for tests.
    public enum Event: Sendable, Equatable {
        case recorded(jobID: Int64, taskID: String, state: JobState, changed: Bool)
        /// A request's callback named a task the ledger did not have: its job settled with it.
        case settled(jobID: Int64, taskID: String, CallbackSettlement)
        /// A request's callback the service could not confirm then: kept, for a run to confirm.
        case noted(jobID: Int64, taskID: String, reason: String)
        case refused(status: Int, reason: String)
        /// A callback a receiver that settles requests in doubt only leaves to the run's looks.
        case leftToLooks(taskID: String)

        /// How the log says it, and how loud.
        public var logged: (level: Logger.Level, message: String) {
            switch self {
            case let .recorded(_, taskID, state, changed):
                (
                    .info,
                    "task \(taskID): \(state.rawValue), confirmed by the service\(changed ? "" : "; already recorded")"
                )
            case let .settled(_, taskID, .settled):
                (.notice, "task \(taskID): its request got no answer; its job is settled with it, not in doubt")
            case let .settled(_, taskID, .keptAsEarlierTake):
                (
                    .warning,
                    "task \(taskID): made by a request that got no answer, whose job was sent again: kept as an earlier take (paid twice)"
                )
            case let .settled(_, taskID, .noted):
                (
                    .notice,
                    "task \(taskID): its request is still being sent, or its sender stopped; kept for the next run"
                )
            case let .settled(_, taskID, .alreadyKnown):
                (.info, "task \(taskID): already recorded")
            case let .noted(_, taskID, reason):
                (
                    .notice,
                    "task \(taskID): its request got no answer, and the service cannot confirm it now (\(reason)); kept for the next run to confirm"
                )
            case let .refused(status, reason):
                (.warning, "refused a callback (HTTP \(status)): \(reason)")
            case let .leftToLooks(taskID):
                (.trace, "task \(taskID): its callback came; the run's looks follow it")
            }
        }
    }

    let ledger: any StatusLedger
    let confirmer: any CallbackConfirmer
    let path: String
    /// Only callbacks that settle a request in doubt are confirmed and recorded; the rest are
    /// answered at once and left to the run's own looks, which follow those tasks anyway:
    /// no status look is spent twice (`OwnCallbacks`).
    let settlesOnly: Bool

    public init(
        ledger: any StatusLedger, confirmer: any CallbackConfirmer, path: String = "/hook", settlesOnly: Bool = false
    ) {
        self.ledger = ledger
        self.confirmer = confirmer
        self.path = path.hasPrefix("/") ? path : "/" + path
        self.settlesOnly = settlesOnly
    }

    /// Handles one callback body, with the token its URL carried: the status to answer and what happened.
    public func handle(
        body: ByteBuffer?, token: String? = nil
    ) async throws -> (status: HTTPResponse.Status, event: Event) {
        guard let body else {
            return (.contentTooLarge, .refused(status: 413, reason: "body over \(Self.maxBodyBytes / 1024) KB"))
        }
        guard let conversion = try? JSONDecoder().decode(WireConversion.self, from: Data(body.readableBytesView)),
            let hint = conversion.remoteStatus, let taskID = hint.taskID?.trimmed, !taskID.isEmpty
        else {
            return (.badRequest, .refused(status: 400, reason: "not a JSON object with task_id and status"))
        }
        let known = try await ledger.job(taskID: taskID)
        if settlesOnly, known != nil || token == nil { return (.ok, .leftToLooks(taskID: taskID)) }
        var named: (id: Int64, batchID: Int64)?
        if known == nil, let token { named = try await ledger.job(callbackToken: token) }
        guard let job = known ?? named else {
            return (.notFound, .refused(status: 404, reason: "no job in the ledger has task \(taskID)"))
        }
        let confirmed: RemoteStatus
        switch await confirmer.lookUp(taskID: taskID, batchID: job.batchID) {
        case let .found(answer) where answer.taskID == nil || answer.taskID == taskID:
            confirmed = answer
        case .found:
            return (
                .serviceUnavailable,
                .refused(status: 503, reason: "the service answered for another task than \(taskID)")
            )
        case let .retryable(status, error, _):
            if known == nil, let token, status != 404 {
                // A request's own callback, the service busy or down: kept until a run confirms it.
                try await ledger.noteCallback(token: token, taskID: taskID)
                return (.accepted, .noted(jobID: job.id, taskID: taskID, reason: error))
            }
            return (
                .serviceUnavailable,
                .refused(
                    status: 503, reason: "could not confirm task \(taskID) with the service: \(error); nothing recorded"
                )
            )
        case let .keyRejected(_, error):
            return (
                .serviceUnavailable,
                .refused(
                    status: 503, reason: "could not confirm task \(taskID) with the service: \(error); nothing recorded"
                )
            )
        }
        if known == nil, let token {
            let settlement = try await ledger.settle(
                jobID: job.id, callbackToken: token, taskID: taskID, status: confirmed, now: Date())
            if settlement == .settled { try await ledger.recordStatus(jobID: job.id, confirmed, now: Date()) }
            return (.ok, .settled(jobID: job.id, taskID: taskID, settlement))
        }
        let (state, changed) = try await ledger.recordStatus(jobID: job.id, confirmed, now: Date())
        return (.ok, .recorded(jobID: job.id, taskID: taskID, state: state, changed: changed))
    }

    /// What a GET of the callback path answers: that this is a soundbatch receiver, and of
    /// which ledger, so that a run can ask for tokens in its callbacks.
    public static func greeting(identity: String) -> [String: String] {
        ["soundbatch": "webhook", "ledger": identity]
    }

    /// Whether the receiver at `url` writes to the ledger of this identity (it says so when
    /// asked, within a few seconds); false for anything else, which keeps callbacks as hints.
    public static func writesTo(identity: String, url: String) async -> Bool {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(3)),
            response.status == .ok,
            let body = try? await response.body.collect(upTo: 4096),
            let greeting = try? JSONDecoder().decode([String: String].self, from: Data(body.readableBytesView))
        else { return false }
        return greeting == Self.greeting(identity: identity)
    }

    /// Listens for callbacks for as long as `body` runs, then stops gracefully. `body` gets
    /// the callback URL; `onEvent` hears every callback; a callback `door` does not let in
    /// is answered 503 (the service calls back again) and changes nothing.
    public func serve<Value>(
        host: String, port: Int, logger: Logger, door: (any CallbackDoor)? = nil,
        onEvent: @escaping @Sendable (Event) async -> Void,
        while body: (_ url: String) async throws -> Value
    ) async throws -> Value {
        let router = Router()
        router.post(RouterPath(path)) { request, _ -> Response in
            guard door?.enter() ?? true else {
                return Response(
                    status: .serviceUnavailable, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"error":"not receiving now","ok":false}"#)))
            }
            defer { door?.leave() }
            let body = request.body
            let bytes = try? await body.collect(upTo: Self.maxBodyBytes)
            let token = CallbackToken.token(inQuery: request.uri.query)
            // Confirmed and recorded on a task of its own: a sender that stops waiting (its
            // timeout, on a loaded machine) must not cancel a callback half-recorded.
            let (status, event) = try await Task { try await self.handle(body: bytes, token: token) }.value
            await onEvent(event)
            let answer: [String: Any] =
                switch event {
                case let .recorded(_, _, state, changed): ["ok": true, "state": state.rawValue, "changed": changed]
                case let .settled(_, _, settlement): ["ok": true, "settled": "\(settlement)"]
                case .noted: ["ok": true, "noted": true]
                case let .refused(_, reason): ["ok": false, "error": reason]
                case .leftToLooks: ["ok": true]
                }
            let data = (try? JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys])) ?? Data()
            return Response(
                status: status, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.get(RouterPath(path)) { _, _ -> Response in
            let greeting = Self.greeting(identity: try await self.ledger.identity())
            let data = (try? JSONSerialization.data(withJSONObject: greeting, options: [.sortedKeys])) ?? Data()
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
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
