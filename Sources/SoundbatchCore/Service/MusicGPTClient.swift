import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The user's API key. It never appears in a description, a log line or the ledger.
public struct APIKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    fileprivate let value: String

    public init?(_ value: String) {
        let trimmed = value.trimmed
        guard !trimmed.isEmpty else { return nil }
        self.value = trimmed
    }

    public var description: String { "<api key>" }
    public var debugDescription: String { "<api key>" }
}

/// What the service said to one submission, sorted by what soundbatch must do next.
public enum SubmitOutcome: Sendable, Equatable {
    /// A task was created.
    case accepted(SubmitAnswer)
    /// The service refused this job for good (400, 404, 409, 422, a 200 with success false, a redirect).
    case rejected(status: Int, error: String)
    /// Worth trying again later (429, 5xx, 408, no connection). `retryAfter` is the
    /// service's own wish, when it said one.
    case retryable(status: Int?, error: String, retryAfter: Duration?)
    /// The key was refused (401, 403): nothing else will go through.
    case keyRejected(status: Int, error: String)
    /// Not enough credits (402).
    case outOfCredits(error: String)
    /// The request left, but no usable answer came back: a task may exist and be charged.
    case ambiguous(status: Int?, error: String)
}

/// A 200 answer of the submit endpoint.
public struct SubmitAnswer: Sendable, Equatable {
    public var taskID: String
    public var conversionID: String?
    /// Seconds; nil when the service said -1 (unknown) or nothing.
    public var eta: Int?
    public var creditEstimate: Double?
    public var message: String?

    public init(taskID: String, conversionID: String? = nil, eta: Int? = nil, creditEstimate: Double? = nil, message: String? = nil) {
        self.taskID = taskID
        self.conversionID = conversionID
        self.eta = eta
        self.creditEstimate = creditEstimate
        self.message = message
    }
}

/// What one job asks of the sound generator.
public struct SubmitRequest: Sendable, Equatable {
    public var prompt: String
    public var audioLength: Int?
    public var webhookURL: String?

    public init(prompt: String, audioLength: Int? = nil, webhookURL: String? = nil) {
        self.prompt = prompt
        self.audioLength = audioLength
        self.webhookURL = webhookURL
    }
}

/// Where a task stands, as the status endpoint or a webhook tells it.
public struct RemoteStatus: Sendable, Equatable {
    public enum Phase: Sendable, Equatable { case running, completed, failed }

    public var taskID: String?
    public var status: String
    public var statusMessage: String?
    public var audioURL: String?
    public var conversionCost: Double?

    public init(taskID: String? = nil, status: String, statusMessage: String? = nil, audioURL: String? = nil, conversionCost: Double? = nil) {
        self.taskID = taskID
        self.status = status
        self.statusMessage = statusMessage
        self.audioURL = audioURL
        self.conversionCost = conversionCost
    }

    /// COMPLETED and FAILED end a task, in any letter case; anything else is still running.
    public var phase: Phase {
        switch status.trimmed.uppercased() {
        case "COMPLETED": .completed
        case "FAILED": .failed
        default: .running
        }
    }
}

/// What one look at a task's status gave.
public enum StatusOutcome: Sendable, Equatable {
    case found(RemoteStatus)
    /// Worth looking again later (429, 5xx, 408, 404 while the service catches up, no answer).
    case retryable(status: Int?, error: String, retryAfter: Duration?)
    case keyRejected(status: Int, error: String)
}

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

    public init(baseURL: String, key: APIKey, timeout: Duration = .seconds(60), connections: Int = 8) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.key = key
        self.timeout = timeout
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(10)),
            connectionPool: .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: max(connections, 1)))
        configuration.httpVersion = .automatic
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connections. Call once, when the run is over.
    public func shutdown() async {
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

        let response: HTTPClientResponse, deadline: ContinuousClock.Instant
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
            return Self.outcome(status: status, headers: response.headers, body: nil,
                                bodyProblem: "the answer is larger than 1 MiB")
        } catch {
            return Self.outcome(status: status, headers: response.headers, body: nil,
                                bodyProblem: "the answer broke off: \(Self.describe(error))")
        }
        return Self.outcome(status: status, headers: response.headers, body: Data(body.readableBytesView), bodyProblem: nil)
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
        components?.queryItems = [URLQueryItem(name: "conversionType", value: "SOUND_GENERATOR"),
                                  URLQueryItem(name: "task_id", value: taskID)]
        let request = authorizedRequest(components?.string ?? baseURL)
        do {
            let (response, deadline) = try await execute(request)
            let body = try await Self.collect(response, upTo: Self.maxAnswerBytes, deadline: deadline)
            return Self.statusOutcome(status: Int(response.status.code), headers: response.headers,
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
                  let remote = envelope.conversion?.remoteStatus ?? envelope.flat.remoteStatus else {
                return .retryable(status: status, error: "HTTP \(status) but the answer has no conversion status: \(snippet(body))", retryAfter: nil)
            }
            return .found(remote)
        case 401, 403:
            return .keyRejected(status: status, error: serviceError)
        default:
            return .retryable(status: status, error: "HTTP \(status): \(serviceError)",
                              retryAfter: headers.first(name: "Retry-After").flatMap { RetryAfter.parse($0) })
        }
    }

    struct AnswerTimedOut: Error, CustomStringConvertible {
        var description: String { "timed out reading the answer" }
    }

    /// The whole body, unless it is larger than `limit` or still coming at `deadline`.
    static func collect(_ response: HTTPClientResponse, upTo limit: Int, deadline: ContinuousClock.Instant) async throws -> ByteBuffer {
        try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask { try await response.body.collect(upTo: limit) }
            group.addTask {
                try await Task.sleep(until: deadline, clock: .continuous)
                return nil
            }
            defer { group.cancelAll() }
            guard let body = try await group.next() ?? nil else { throw AnswerTimedOut() }
            return body
        }
    }

    /// Sorts a complete (or broken-off) HTTP answer into an outcome.
    static func outcome(status: Int, headers: HTTPHeaders, body: Data?, bodyProblem: String?) -> SubmitOutcome {
        let answer = body.flatMap { try? JSONDecoder().decode(WireAnswer.self, from: $0) }
        let serviceError = answer?.error?.text ?? bodyProblem ?? body.map(Self.snippet) ?? "no answer body"

        switch status {
        case 200..<300:
            guard let answer else {
                // A 2xx we cannot read may still mean a task was created.
                return .ambiguous(status: status, error: "HTTP \(status) but \(bodyProblem ?? "the answer is not the expected JSON"): \(body.map(Self.snippet) ?? "")")
            }
            if answer.success == false {
                return .rejected(status: status, error: answer.error?.text ?? answer.message ?? "the service answered success: false")
            }
            guard let taskID = answer.taskID?.trimmed, !taskID.isEmpty else {
                return .ambiguous(status: status, error: "HTTP \(status) with no task_id in the answer")
            }
            let eta = answer.eta.flatMap { $0 >= 0 ? Int($0) : nil }
            return .accepted(SubmitAnswer(
                taskID: taskID,
                conversionID: answer.conversionID.flatMap { $0.isEmpty ? nil : $0 },
                eta: eta,
                creditEstimate: answer.creditEstimate,
                message: answer.message))
        case 300..<400:
            let location = headers.first(name: "Location") ?? "elsewhere"
            return .rejected(status: status, error: "the service redirected to \(location); soundbatch does not follow redirects with your key (check --base-url)")
        case 401, 403:
            return .keyRejected(status: status, error: serviceError)
        case 402:
            return .outOfCredits(error: serviceError)
        case 408, 429, 500..<600:
            return .retryable(status: status, error: "HTTP \(status): \(serviceError)",
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
        let neverLeft: Bool = if let client = error as? HTTPClientError {
            [.connectTimeout, .getConnectionFromPoolTimeout, .tlsHandshakeTimeout, .invalidURL, .emptyHost].contains(client)
        } else if let channel = error as? ChannelError, case .connectTimeout = channel {
            true
        } else {
            error is NIOConnectionError || (error as? IOError)?.errnoCode == ECONNREFUSED
        }
        return neverLeft
            ? .retryable(status: nil, error: "could not connect: \(text)", retryAfter: nil)
            : .ambiguous(status: nil, error: "\(noAnswer): \(text)")
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

/// The answer's JSON, read leniently: unknown fields are ignored, numbers may come as
/// integers or floats, any field may be missing.
struct WireAnswer: Decodable {
    var success: Bool?
    var taskID: String?
    var conversionID: String?
    var eta: Double?
    var creditEstimate: Double?
    var message: String?
    var error: Text?

    enum CodingKeys: String, CodingKey {
        case success, eta, message, error
        case taskID = "task_id"
        case conversionID = "conversion_id"
        case creditEstimate = "credit_estimate"
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        success = try? c.decodeIfPresent(Bool.self, forKey: .success)
        taskID = c.lenientText(.taskID)
        conversionID = c.lenientText(.conversionID)
        eta = c.lenientNumber(.eta)
        creditEstimate = c.lenientNumber(.creditEstimate)
        message = c.lenientText(.message)
        error = try? c.decodeIfPresent(Text.self, forKey: .error)
    }

    /// An `error` that may be a string or an object with a message.
    struct Text: Decodable {
        var text: String
        init(from decoder: Decoder) throws {
            if let text = try? decoder.singleValueContainer().decode(String.self) {
                self.text = text
            } else {
                struct Object: Decodable { var message: String?; var detail: String? }
                let object = try Object(from: decoder)
                text = object.message ?? object.detail ?? "unknown error"
            }
        }
    }
}

/// The status answer: `{"success": true, "conversion": {...}}`, read leniently.
struct StatusEnvelope: Decodable {
    var conversion: WireConversion?
    var flat: WireConversion

    init(from decoder: Decoder) throws {
        struct Keys: Decodable { var conversion: WireConversion? }
        conversion = (try? Keys(from: decoder))?.conversion
        flat = try WireConversion(from: decoder)
    }
}

/// A conversion's fields, in a status answer or a webhook's body.
public struct WireConversion: Decodable, Sendable {
    var taskID: String?
    var status: String?
    var statusMessage: String?
    var audioURL: String?
    var conversionCost: Double?

    enum CodingKeys: String, CodingKey {
        case status
        case taskID = "task_id"
        case statusMessage = "status_msg"
        case audioURL = "audio_url"
        case conversionCost = "conversion_cost"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        taskID = try? c.decodeIfPresent(String.self, forKey: .taskID)
        status = try? c.decodeIfPresent(String.self, forKey: .status)
        statusMessage = try? c.decodeIfPresent(String.self, forKey: .statusMessage)
        audioURL = (try? c.decodeIfPresent(String.self, forKey: .audioURL)).flatMap { $0?.isEmpty == false ? $0 : nil }
        conversionCost = c.lenientNumber(.conversionCost)
    }

    /// Nil when there is no status to act on.
    public var remoteStatus: RemoteStatus? {
        guard let status, !status.trimmed.isEmpty else { return nil }
        return RemoteStatus(taskID: taskID, status: status, statusMessage: statusMessage, audioURL: audioURL,
                            conversionCost: conversionCost)
    }
}

extension KeyedDecodingContainer {
    /// A string, or a number written as one; nil when missing or of another type.
    func lenientText(_ key: Key) -> String? {
        if let text = try? decodeIfPresent(String.self, forKey: key) { return text }
        if let number = try? decodeIfPresent(Int64.self, forKey: key) { return String(number) }
        return nil
    }

    /// A number, integer or float, or one written as a string; nil when missing or not a number.
    func lenientNumber(_ key: Key) -> Double? {
        if let number = try? decodeIfPresent(Double.self, forKey: key), number.isFinite { return number }
        if let text = try? decodeIfPresent(String.self, forKey: key) { return Double(text.trimmed) }
        return nil
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
public enum RetryAfter {
    public static func parse(_ value: String, now: Date = Date()) -> Duration? {
        let text = value.trimmed
        if let seconds = Double(text), seconds >= 0, seconds.isFinite {
            return .milliseconds(Int64(seconds * 1000))
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                return .milliseconds(Int64(max(0, date.timeIntervalSince(now)) * 1000))
            }
        }
        return nil
    }
}

/// application/x-www-form-urlencoded, as HTML forms write it.
enum FormEncoding {
    private static let unreserved = CharacterSet(charactersIn:
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._*")

    static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { escape($0.0) + "=" + escape($0.1) }.joined(separator: "&")
    }

    static func escape(_ text: String) -> String {
        text.split(separator: " ", omittingEmptySubsequences: false)
            .map { $0.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "" }
            .joined(separator: "+")
    }
}
