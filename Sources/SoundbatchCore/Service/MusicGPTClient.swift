import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The MusicGPT Sound Generator API, as `../shared/api/` describes it. One shared
/// HTTP client for the run, connections kept alive, redirects never followed (they would
/// carry the key to another host), answers capped at 1 MiB.
public final class MusicGPTClient: Sendable {
    public static let defaultBaseURL = "https://api.musicgpt.com/api/public"
    public static let maxAnswerBytes = 1 << 20

    public let baseURL: String
    private let key: APIKey
    private let timeout: Duration
    private let http: HTTPClient

    /// Runs `body` with a client of the API, then closes its connections.
    public static func withClient<T>(
        baseURL: String, key: APIKey, timeout: Duration = .seconds(60), connections: Int = 8,
        _ body: (MusicGPTClient) async throws -> T
    ) async throws -> T {
        let client = MusicGPTClient(baseURL: baseURL, key: key, timeout: timeout, connections: connections)
        return try await withCleanUp(client.shutdown) { try await body(client) }
    }

    init(baseURL: String, key: APIKey, timeout: Duration = .seconds(60), connections: Int = 8) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.key = key
        self.timeout = timeout
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(10)),
            connectionPool: .init(
                idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: max(connections, 1)))
        configuration.httpVersion = .automatic
        // A refused connection fails its requests at once: `ServiceHealth` waits out an
        // outage and probes. The pool's own retries held a request up to 10 s, which a
        // Ctrl-C then had to wait for.
        configuration.connectionPool.retryConnectionEstablishment = false
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connections. Call once, when the run is over.
    func shutdown() async {
        try? await http.shutdown()
    }

    /// Sends one submission and sorts the answer. Never throws: every failure is an outcome.
    public func submit(_ job: SubmitRequest) async -> SubmitOutcome {
        var request = authorizedRequest(baseURL + "/v1/sound_generator")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        var form = [("prompt", job.prompt)]
        if let audioLength = job.audioLength { form.append(("audio_length", String(audioLength))) }
        if let webhookURL = job.webhookURL { form.append(("webhook_url", webhookURL)) }
        request.body = .bytes(ByteBuffer(string: FormEncoding.encode(form)))

        let response: HTTPClientResponse
        let deadline: ContinuousClock.Instant
        do {
            (response, deadline) = try await execute(request)
        } catch {
            return Self.outcome(forTransportError: error)
        }
        let status = Int(response.status.code)
        let body: ByteBuffer
        do {
            // The client's deadline covers the answer's head only: a body that drips in
            // byte by byte must not hold the job past the timeout.
            body = try await Self.collect(response, upTo: Self.maxAnswerBytes, deadline: deadline)
        } catch is NIOTooManyBytesError {
            return Self.outcome(
                status: status, headers: response.headers, body: nil,
                bodyProblem: "the answer is larger than 1 MiB")
        } catch {
            return Self.outcome(
                status: status, headers: response.headers, body: nil,
                bodyProblem: "the answer broke off: \(Self.describe(error))")
        }
        return Self.outcome(
            status: status, headers: response.headers, body: Data(body.readableBytesView), bodyProblem: nil)
    }

    /// A request to the API with the key, asking for JSON.
    private func authorizedRequest(_ url: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: key.value)
        request.headers.add(name: "Accept", value: "application/json")
        return request
    }

    /// Sends the request; its answer's body must then be read by the deadline returned.
    private func execute(_ request: HTTPClientRequest) async throws -> (HTTPClientResponse, ContinuousClock.Instant) {
        let deadline = ContinuousClock.now + timeout
        return (try await http.execute(request, timeout: .nanoseconds(Int64(timeout.seconds * 1e9))), deadline)
    }

    /// Looks up one task. Looks are safe to repeat, so every failure is retryable but a refused key.
    public func status(taskID: String) async -> StatusOutcome {
        var components = URLComponents(string: baseURL + "/v1/byId")
        components?.queryItems = [
            URLQueryItem(name: "conversionType", value: "SOUND_GENERATOR"),
            URLQueryItem(name: "task_id", value: taskID)
        ]
        let request = authorizedRequest(components?.string ?? baseURL)
        do {
            let (response, deadline) = try await execute(request)
            let body = try await Self.collect(response, upTo: Self.maxAnswerBytes, deadline: deadline)
            return Self.statusOutcome(
                status: Int(response.status.code), headers: response.headers,
                body: Data(body.readableBytesView))
        } catch is NIOTooManyBytesError {
            return .retryable(status: nil, error: "the status answer is larger than 1 MiB", retryAfter: nil)
        } catch {
            return .retryable(status: nil, error: "\(Self.noAnswer): \(Self.describe(error))", retryAfter: nil)
        }
    }

    static func statusOutcome(status: Int, headers: HTTPHeaders, body: Data) -> StatusOutcome {
        let serviceError = (try? JSONDecoder().decode(WireAnswer.self, from: body))?.error?.text ?? snippet(body)
        switch status {
        case 200..<300:
            guard let envelope = try? JSONDecoder().decode(StatusEnvelope.self, from: body),
                let remote = envelope.conversion?.remoteStatus ?? envelope.flat.remoteStatus
            else {
                return .retryable(
                    status: status, error: "HTTP \(status) but the answer has no conversion status: \(snippet(body))",
                    retryAfter: nil)
            }
            return .found(remote)
        case 401, 403:
            return .keyRejected(status: status, error: serviceError)
        default:
            return .retryable(
                status: status, error: "HTTP \(status): \(serviceError)",
                retryAfter: headers.first(name: "Retry-After").flatMap { RetryAfter.parse($0) })
        }
    }

    struct AnswerTimedOut: Error, CustomStringConvertible {
        var description: String { "timed out reading the answer" }
    }

    /// The whole body, unless it is larger than `limit` or still coming at `deadline`.
    static func collect(
        _ response: HTTPClientResponse, upTo limit: Int, deadline: ContinuousClock.Instant
    ) async throws -> ByteBuffer {
        try await firstOf(
            { try await response.body.collect(upTo: limit) },
            {
                try await Task.sleep(until: deadline, clock: .continuous)
                throw AnswerTimedOut()
            })
    }

    /// Sorts a complete (or broken-off) HTTP answer into an outcome.
    static func outcome(status: Int, headers: HTTPHeaders, body: Data?, bodyProblem: String?) -> SubmitOutcome {
        let answer = body.flatMap { try? JSONDecoder().decode(WireAnswer.self, from: $0) }
        let serviceError = answer?.error?.text ?? bodyProblem ?? body.map(Self.snippet) ?? "no answer body"

        switch status {
        case 200..<300:
            guard let answer else {
                // A 2xx we cannot read may still mean a task was created.
                return .noAnswer(
                    status: status,
                    error:
                        "HTTP \(status) but \(bodyProblem ?? "the answer is not the expected JSON"): \(body.map(Self.snippet) ?? "")"
                )
            }
            if answer.success == false {
                return .rejected(
                    status: status, error: answer.error?.text ?? answer.message ?? "the service answered success: false"
                )
            }
            guard let taskID = answer.taskID?.trimmed, !taskID.isEmpty else {
                return .noAnswer(status: status, error: "HTTP \(status) with no task_id in the answer")
            }
            let eta = answer.eta.flatMap { $0 >= 0 ? Int($0) : nil }
            return .accepted(
                SubmitAnswer(
                    taskID: taskID,
                    conversionID: answer.conversionID.flatMap { $0.isEmpty ? nil : $0 },
                    eta: eta,
                    creditEstimate: answer.creditEstimate,
                    message: answer.message))
        case 300..<400:
            let location = headers.first(name: "Location") ?? "elsewhere"
            return .rejected(
                status: status,
                error:
                    "the service redirected to \(location); "
                    + "soundbatch does not follow redirects with your key (check --base-url)"
            )
        case 401, 403:
            return .keyRejected(status: status, error: serviceError)
        case 402:
            return .outOfCredits(error: serviceError)
        case 408, 429, 500..<600:
            return .retryable(
                status: status, error: "HTTP \(status): \(serviceError)",
                retryAfter: headers.first(name: "Retry-After").flatMap { RetryAfter.parse($0) })
        default:
            return .rejected(status: status, error: "HTTP \(status): \(serviceError)")
        }
    }

    /// How the error of a request that left but got no answer begins.
    static let noAnswer = "no answer"

    /// A failure with no HTTP answer: retryable only when the request surely never left.
    static func outcome(forTransportError error: Error) -> SubmitOutcome {
        let text = describe(error)
        let neverLeft: Bool =
            if let client = error as? HTTPClientError {
                [.connectTimeout, .getConnectionFromPoolTimeout, .tlsHandshakeTimeout, .invalidURL, .emptyHost]
                    .contains(client)
            } else if let channel = error as? ChannelError, case .connectTimeout = channel {
                true
            } else {
                error is NIOConnectionError || (error as? IOError)?.errnoCode == ECONNREFUSED
            }
        return neverLeft
            ? .retryable(status: nil, error: "could not connect: \(text)", retryAfter: nil)
            : .noAnswer(status: nil, error: "\(noAnswer): \(text)")
    }

    static func describe(_ error: Error) -> String {
        if let client = error as? HTTPClientError {
            switch client {
            case .deadlineExceeded: return "timed out waiting for the answer"
            case .remoteConnectionClosed: return "the connection was closed before the answer"
            case .readTimeout: return "timed out reading the answer"
            default: return "\(client)"
            }
        }
        return "\(error)"
    }

    /// The start of a body that is not JSON (an HTML error page from a proxy, say), on one line.
    static func snippet(_ body: Data) -> String {
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        let oneLine = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        let stripped = oneLine.replacingOccurrences(of: "<[^>]*>", with: " ", options: .regularExpression)
        return stripped.split(separator: " ").joined(separator: " ")
    }
}
