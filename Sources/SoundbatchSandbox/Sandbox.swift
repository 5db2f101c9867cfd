import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Serving
import SoundbatchCore

/// How the sandbox behaves. The defaults match the documented service: 60 submissions
/// and 200 status looks a minute per key.
public struct SandboxConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port.
    public var port = 0
    /// Submissions allowed per minute; nil for no limit.
    public var submitsPerMinute: Double? = 60
    /// Status looks allowed per minute; nil for no limit.
    public var pollsPerMinute: Double? = 200
    /// How 429 answers give Retry-After.
    public var retryAfter = RetryAfterStyle.seconds
    /// How the limits are enforced.
    public var limiter = LimiterShape.bucket
    /// The service's own time on each request, plus up to `latencyJitter` more: spent after
    /// its rate limit has counted the request, as a real service's processing is.
    public var latency: Duration = .zero
    public var latencyJitter: Duration = .zero
    /// The network's delay before a request reaches the service and its rate limit: up to
    /// this much, at random, so that arrival times spread as they do over a long link.
    public var networkJitter: Duration = .zero
    /// The share of submissions that fail, spread over the kinds in `failureKinds`.
    public var failureRate = 0.0
    public var failureKinds = FailureKind.allCases
    /// Credits on the account; nil for unlimited. Below a task's estimate: 402.
    public var credits: Double?
    /// The keys accepted (403 for another); none: any key is.
    public var apiKeys: [String] = []
    /// Each key has its own limits, as the API's are (per key); else all keys share one.
    public var perKey = false
    public var seed: UInt64 = 1
    /// A file the sandbox keeps its tasks in, one JSON line each, so that a sandbox started
    /// later with the same file answers for them (a batch run with `--sandbox` can be
    /// resumed and tracked by a later command).
    public var stateFile: String?
    /// Submissions whose prompt contains this always answer 500: one job's own trouble
    /// while the service answers the rest.
    public var failingPrompt: String?
    /// An outage on purpose: up for `after`, then nothing listens for `down` (connections
    /// are refused), then it listens again but answers 503 pages for `errorPages`.
    public var outage: Outage?

    public struct Outage: Sendable {
        public var after: Duration
        public var down: Duration
        public var errorPages: Duration

        public init(after: Duration, down: Duration, errorPages: Duration) {
            self.after = after
            self.down = down
            self.errorPages = errorPages
        }
    }
    /// How long generation takes: lognormal around this median, with `generationSpread` the
    /// standard deviation of its logarithm (0.3 puts nine tasks in ten between 0.6 and 1.6
    /// times the median), so tasks finish out of the order they came in.
    public var generationTime: Duration = .seconds(25)
    public var generationSpread = 0.3
    /// What eta the submit answer carries.
    public var eta = ETAStyle.unknown
    /// The share of tasks whose generation fails.
    public var generationFailureRate = 0.05

    public enum ETAStyle: String, Sendable, CaseIterable {
        /// -1, as the documented example: the client must find out.
        case unknown
        /// The seconds the task will take, rounded up.
        case `true`
        /// Within 30% of the truth either way.
        case rough
    }

    public enum RetryAfterStyle: String, Sendable, CaseIterable {
        case seconds
        case httpDate = "http-date"
        case none
    }

    public enum FailureKind: String, Sendable, CaseIterable {
        /// 500 with a JSON error.
        case serverError = "500"
        /// 502 with an HTML page, as a proxy would answer.
        case badGateway = "502"
        /// 200 with success: false.
        case successFalse = "success-false"
        /// The connection is dropped before the request is taken: no task.
        case resetBefore = "reset-before"
        /// The task is created and charged, then the connection is dropped.
        case resetAfter = "reset-after"
    }

    public init() {}
}

/// A task as the sandbox keeps it.
public struct SandboxTask: Sendable, Codable, Equatable {
    public var taskID: String
    public var conversionID: String
    public var prompt: String
    public var audioLength: Int?
    public var webhookURL: String?
    public var creditEstimate: Double
    public var conversionCost: Double
    public var eta: Int
    public var willFail: Bool
    public var createdAt: Date
    /// When its generation ends (nil in state files written before it was kept).
    public var finishesAt: Date?
    /// Which of the keys given asked for it ("key 1", ...; "any" for another), for benchmarks.
    public var key: String?

    enum CodingKeys: String, CodingKey {
        case prompt, eta, key
        case taskID = "task_id"
        case conversionID = "conversion_id"
        case audioLength = "audio_length"
        case webhookURL = "webhook_url"
        case creditEstimate = "credit_estimate"
        case conversionCost = "conversion_cost"
        case willFail = "will_fail"
        case createdAt = "created_at"
        case finishesAt = "finishes_at"
    }

    /// How long it has run by `now`, and whether it has finished.
    func finished(by now: Date) -> Bool { now >= finishesAt ?? createdAt }
}

/// A local stand-in for the MusicGPT API, faithful to `../shared/api/`: the submit and
/// status endpoints, auth, validation, rate limits with Retry-After, credits, injected
/// failures, and tasks that finish with a real WAV file to fetch.
///
/// `GET /_sandbox/tasks` (outside the API's paths) lists every task accepted, so tests
/// and the fault harness can compare it with the ledger.
public actor Sandbox {
    public let configuration: SandboxConfiguration
    private var random: SeededRandom
    private var tasks: [String: SandboxTask] = [:]
    private var order: [String] = []
    private var creditsLeft: Double?
    /// The limits in force, by key (by "" when keys share them).
    private var submitWindows: [String: ServerRateLimit] = [:]
    private var pollWindows: [String: ServerRateLimit] = [:]
    /// What each key asked and was refused, for tests and benchmarks (`/_sandbox/keys`).
    private var keyCounts: [String: KeyCounts] = [:]
    /// Counts of answers by kind, for tests.
    public private(set) var answers: [String: Int] = [:]

    public init(configuration: SandboxConfiguration = SandboxConfiguration()) {
        self.configuration = configuration
        random = SeededRandom(seed: configuration.seed)
        creditsLeft = configuration.credits
        for saved in configuration.stateFile.map(Self.savedTasks) ?? [] {
            var task = saved.task
            task.finishesAt = task.createdAt.addingTimeInterval(saved.seconds)
            tasks[task.taskID] = task
            order.append(task.taskID)
        }
    }

    /// A task and how long it takes, as the state file keeps it.
    private struct SavedTask: Codable {
        var task: SandboxTask
        var seconds: Double
    }

    /// The tasks a state file holds; a line that cannot be read (cut off by a kill) is skipped.
    private static func savedTasks(in path: String) -> [SavedTask] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap {
            try? JSONDecoder().decode(SavedTask.self, from: $0)
        }
    }

    /// Appends the task to the state file: one line, so that a kill loses at most that line.
    private func save(_ task: SandboxTask, seconds: Double) {
        guard let path = configuration.stateFile,
            var line = try? JSONEncoder().encode(SavedTask(task: task, seconds: seconds))
        else { return }
        line.append(UInt8(ascii: "\n"))
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// Every task accepted, in order.
    public var acceptedTasks: [SandboxTask] { order.compactMap { tasks[$0] } }

    // MARK: Running

    /// Serves for as long as `body` runs, calling back finished tasks' webhooks meanwhile,
    /// then stops gracefully. `body` gets the base URL.
    public nonisolated func serve<Value>(
        logger: Logger = Logger(label: "sandbox"),
        while body: (_ baseURL: String) async throws -> Value
    ) async throws -> Value {
        let host = configuration.host
        let router = Router(context: SandboxContext.self)
        router.post("/v1/sound_generator") { request, context in
            try await self.travelling { try await self.submit(request, channel: context.channel) }
        }
        router.get("/v1/byId") { request, _ in try await self.travelling { await self.status(request) } }
        router.get("/audio/:file") { request, context in
            await self.audio(named: context.parameters.get("file") ?? "", request: request)
        }
        router.get("/_sandbox/tasks") { _, _ in await self.taskList() }
        router.get("/_sandbox/keys") { _, _ in await self.keyList() }
        let responder = router.buildResponder()
        guard let outage = configuration.outage else {
            return try await serving(
                responder, host: host, port: configuration.port, serverName: "soundbatch-sandbox", logger: logger
            ) { port in
                let origin = "http://\(host):\(port)"
                return try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await Self.sendCallbacks(from: self, origin: origin, logger: logger) }
                    defer { group.cancelAll() }  // the callbacks run until the sandbox stops
                    return try await body(origin)
                }
            }
        }
        // With an outage, the server comes and goes while `body` runs.
        let (ports, portFound) = AsyncStream.makeStream(of: Int.self)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var port = self.configuration.port
                try await serving(responder, host: host, port: port, serverName: "soundbatch-sandbox", logger: logger) {
                    bound in
                    port = bound
                    portFound.yield(bound)
                    portFound.finish()
                    try await Task.sleep(for: outage.after)
                }
                try await Task.sleep(for: outage.down)  // nothing listens: connections are refused
                await self.answerErrorPages(for: outage.errorPages)
                try await serving(responder, host: host, port: port, serverName: "soundbatch-sandbox", logger: logger) {
                    _ in try await Task.sleep(for: .seconds(86_400))  // until the sandbox stops
                }
            }
            defer { group.cancelAll() }
            var found = ports.makeAsyncIterator()
            guard let port = await found.next() else { throw CancellationError() }
            let origin = "http://\(host):\(port)"
            group.addTask { await Self.sendCallbacks(from: self, origin: origin, logger: logger) }
            return try await body(origin)
        }
    }

    /// Until when every API request is answered with a 503 page (the outage's last phase).
    private var errorPagesUntil: ContinuousClock.Instant?

    private func answerErrorPages(for duration: Duration) {
        errorPagesUntil = .now + duration
    }

    private var inErrorPages: Bool { errorPagesUntil.map { ContinuousClock.now < $0 } ?? false }

    /// Starts a quiet sandbox, runs `body` with its base URL, then stops the sandbox.
    public static func withRunning<T: Sendable>(
        _ configuration: SandboxConfiguration = SandboxConfiguration(),
        _ body: (_ baseURL: String, _ sandbox: Sandbox) async throws -> T
    ) async throws -> T {
        let sandbox = Sandbox(configuration: configuration)
        var quiet = Logger(label: "sandbox")
        quiet.logLevel = .critical
        return try await sandbox.serve(logger: quiet) { url in try await body(url, sandbox) }
    }

    // MARK: Submit

    private func submit(_ request: Request, channel: any Channel) async throws -> Response {
        if inErrorPages { return count("503", htmlPage(.serviceUnavailable)) }
        if let refusal = authorize(request) { return refusal }
        if let retryIn = limited(request, .submissions) { return count("429", rateLimited(retryIn: retryIn)) }

        let body = request.body
        let bytes = try await body.collect(upTo: 1 << 20)
        let fields: [String: String]
        if request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true {
            fields = Self.jsonFields(Data(bytes.readableBytesView))
        } else {
            fields = Self.formFields(String(buffer: bytes))
        }
        guard let prompt = fields["prompt"]?.trimmingCharacters(in: .whitespacesAndNewlines), !prompt.isEmpty else {
            return count("422", error(.unprocessableContent, "Prompt is required for sound generation."))
        }
        var audioLength: Int?
        if let text = fields["audio_length"], !text.isEmpty {
            guard let seconds = Int(text), seconds > 0 else {
                return count("422", error(.unprocessableContent, "audio_length must be a positive integer."))
            }
            audioLength = seconds
        }

        if let failing = configuration.failingPrompt, prompt.contains(failing) {
            return count("500", error(.internalServerError, "Internal Server Error"))
        }
        if let failure = pickFailure() {
            switch failure {
            case .serverError: return count("500", error(.internalServerError, "Internal Server Error"))
            case .badGateway: return count("502", htmlPage(.badGateway))
            case .successFalse:
                return count(
                    "success-false",
                    json(.ok, ["success": false, "error": "Generation queue unavailable, please retry."]))
            case .resetBefore:
                count("reset-before")
                return try await reset(channel)
            case .resetAfter:
                _ = try accept(
                    prompt: prompt, audioLength: audioLength, webhookURL: fields["webhook_url"], key: keyLabel(request))
                count("reset-after")
                return try await reset(channel)
            }
        }
        do {
            let task = try accept(
                prompt: prompt, audioLength: audioLength, webhookURL: fields["webhook_url"], key: keyLabel(request))
            var answer: [String: Any] = [
                "success": true, "task_id": task.taskID, "conversion_id": task.conversionID,
                "eta": task.eta, "message": "Successfully published to queue", "sandbox": true
            ]
            // The contract allows an integer or a float estimate: give both kinds.
            answer["credit_estimate"] =
                task.creditEstimate == task.creditEstimate.rounded()
                ? Int(task.creditEstimate) as Any : task.creditEstimate as Any
            return count("200", json(.ok, answer))
        } catch is OutOfCredits {
            return count(
                "402",
                error(
                    .init(code: 402, reasonPhrase: "Payment Required"),
                    "Insufficient credits. Please top up your account."))
        }
    }

    private struct OutOfCredits: Error {}

    /// 401 without a key, 403 with one other than `--api-key`; nil when the key is fine.
    private func authorize(_ request: Request) -> Response? {
        guard let key = request.headers[.authorization], !key.isEmpty else {
            return count("401", error(.unauthorized, "Missing API key in the Authorization header"))
        }
        if !configuration.apiKeys.isEmpty, !configuration.apiKeys.contains(key) {
            return count("403", error(.forbidden, "Invalid API key"))
        }
        return nil
    }

    /// What the requests with one key did.
    struct KeyCounts: Codable {
        var key: String
        var submissions = 0
        var submissionsRefused = 0
        var looks = 0
        var looksRefused = 0

        enum CodingKeys: String, CodingKey {
            case key, submissions, looks
            case submissionsRefused = "submissions_429"
            case looksRefused = "looks_429"
        }
    }

    /// The request's key as tests name it: "key 1" for the first of `apiKeys`, else "any".
    private func keyLabel(_ request: Request) -> String {
        configuration.apiKeys.firstIndex(of: request.headers[.authorization] ?? "").map { "key \($0 + 1)" } ?? "any"
    }

    /// Counts the request against its key's limit (or everyone's); the seconds until it
    /// would be allowed when it is refused, else nil.
    private func limited(_ request: Request, _ kind: PacedRequests) -> Double? {
        let key = request.headers[.authorization] ?? ""
        let label = keyLabel(request)
        let window = configuration.perKey ? key : ""
        let perMinute = kind == .submissions ? configuration.submitsPerMinute : configuration.pollsPerMinute
        var counts = keyCounts[label] ?? KeyCounts(key: label)
        defer { keyCounts[label] = counts }
        if kind == .submissions { counts.submissions += 1 } else { counts.looks += 1 }
        guard let perMinute else { return nil }
        var limit =
            (kind == .submissions ? submitWindows[window] : pollWindows[window])
            ?? ServerRateLimit(perMinute: perMinute, shape: configuration.limiter)
        defer {
            if kind == .submissions { submitWindows[window] = limit } else { pollWindows[window] = limit }
        }
        let (admitted, retryIn) = limit.admit(now: .now)
        if admitted { return nil }
        if kind == .submissions { counts.submissionsRefused += 1 } else { counts.looksRefused += 1 }
        return retryIn
    }

    /// Drops the connection with no answer, as a crashed proxy or a network fault would.
    private func reset(_ channel: any Channel) async throws -> Response {
        try? await channel.close()
        throw CancellationError()
    }

    private func accept(prompt: String, audioLength: Int?, webhookURL: String?, key: String) throws -> SandboxTask {
        let estimate = (Double(audioLength ?? 10) * 0.1 + 1).rounded(toPlaces: 2)
        if let left = creditsLeft {
            guard left >= estimate else { throw OutOfCredits() }
            creditsLeft = left - estimate
        }
        let seconds = configuration.generationTime.seconds * exp(configuration.generationSpread * random.normal())
        let eta =
            switch configuration.eta {
            case .unknown: -1
            case .true: Int(seconds.rounded(.up))
            case .rough: Int((seconds * random.double(in: 0.7...1.3)).rounded())
            }
        let number = order.count + 1
        let createdAt = Date()
        let task = SandboxTask(
            taskID: String(format: "sbx-task-%06d-%08x", number, random.next() & 0xFFFF_FFFF),
            conversionID: String(format: "sbx-conv-%06d", number),
            prompt: prompt, audioLength: audioLength, webhookURL: webhookURL,
            creditEstimate: estimate,
            conversionCost: (estimate * random.double(in: 0.9...1.1)).rounded(toPlaces: 2),
            eta: eta, willFail: random.double(in: 0...1) < configuration.generationFailureRate,
            createdAt: createdAt, finishesAt: createdAt.addingTimeInterval(seconds), key: key)
        tasks[task.taskID] = task
        order.append(task.taskID)
        save(task, seconds: seconds)
        return task
    }

    private func pickFailure() -> SandboxConfiguration.FailureKind? {
        guard configuration.failureRate > 0, !configuration.failureKinds.isEmpty,
            random.double(in: 0...1) < configuration.failureRate
        else { return nil }
        return configuration.failureKinds[Int(random.next() % UInt64(configuration.failureKinds.count))]
    }

    // MARK: Status

    private func status(_ request: Request) async -> Response {
        if inErrorPages { return htmlPage(.serviceUnavailable) }
        if let refusal = authorize(request) { return refusal }
        if let retryIn = limited(request, .looks) { return rateLimited(retryIn: retryIn) }
        let query = request.uri.queryParameters
        guard query["conversionType"].map(String.init)?.uppercased() == "SOUND_GENERATOR" else {
            return error(.badRequest, "conversionType is required (SOUND_GENERATOR)")
        }
        let taskID = query["task_id"].map(String.init)
        let conversionID = query["conversion_id"].map(String.init)
        guard (taskID == nil) != (conversionID == nil) else {
            return error(.badRequest, "Give exactly one of task_id or conversion_id")
        }
        let found =
            taskID.flatMap { tasks[$0] } ?? conversionID.flatMap { id in tasks.values.first { $0.conversionID == id } }
        guard let task = found else { return error(.notFound, "Conversion not found") }

        let conversion = conversion(of: task, origin: Self.origin(of: request))
        return json(.ok, ["success": true, "conversion": conversion])
    }

    /// A task as the status endpoint and webhooks describe it, by how long it has run.
    private func conversion(of task: SandboxTask, origin: String) -> [String: Any] {
        let now = Date()
        let finishesAt = task.finishesAt ?? task.createdAt
        var conversion: [String: Any] = [
            "task_id": task.taskID, "conversion_id": task.conversionID, "conversion_type": "SOUND_GENERATOR",
            "title": String(task.prompt.prefix(40)), "createdAt": Self.iso(task.createdAt),
            "updatedAt": Self.iso(min(now, finishesAt))
        ]
        // The first 30% of a generation waits in the queue.
        let queuedUntil = task.createdAt.addingTimeInterval(finishesAt.timeIntervalSince(task.createdAt) * 0.3)
        switch now {
        case ..<queuedUntil:
            conversion["status"] = "PENDING"
            conversion["status_msg"] = "Waiting in queue"
        case ..<finishesAt:
            conversion["status"] = "IN_PROGRESS"
            conversion["status_msg"] = "Generating"
        default:
            if task.willFail {
                conversion["status"] = "FAILED"
                conversion["status_msg"] = "Generation failed: the model could not render this prompt"
            } else {
                conversion["status"] = "COMPLETED"
                conversion["status_msg"] = "Completed"
                conversion["audio_url"] = "\(origin)/audio/\(task.taskID).wav"
                conversion["conversion_cost"] = task.conversionCost
            }
        }
        return conversion
    }

    // MARK: Webhooks

    private var notified: Set<String> = []

    /// Finished tasks with a webhook_url not yet called, with the body to send.
    private func dueCallbacks(origin: String) -> [(url: String, body: Data)] {
        var due: [(String, Data)] = []
        for id in order where !notified.contains(id) {
            guard let task = tasks[id], let url = task.webhookURL, task.finished(by: Date()) else { continue }
            notified.insert(id)
            let body =
                (try? JSONSerialization.data(
                    withJSONObject: conversion(of: task, origin: origin), options: [.sortedKeys])) ?? Data()
            due.append((url, body))
        }
        return due
    }

    /// Calls each finished task's webhook once, as the service does; failures are logged, not retried.
    private static func sendCallbacks(from sandbox: Sandbox, origin: String, logger: Logger) async {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await callLoop(sandbox: sandbox, http: http, origin: origin, logger: logger)
        } catch {
            // Cancelled: the sandbox is stopping.
        }
        try? await http.shutdown()
    }

    private static func callLoop(sandbox: Sandbox, http: HTTPClient, origin: String, logger: Logger) async throws {
        while !Task.isCancelled {
            for callback in await sandbox.dueCallbacks(origin: origin) {
                var request = HTTPClientRequest(url: callback.url)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: callback.body))
                do {
                    _ = try await http.execute(request, timeout: .seconds(5))
                } catch {
                    logger.notice("webhook \(callback.url) failed: \(error)")
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    private func audio(named file: String, request: Request) -> Response {
        let taskID = file.hasSuffix(".wav") ? String(file.dropLast(4)) : file
        guard let task = tasks[taskID], task.finished(by: Date()), !task.willFail else {
            return error(.notFound, "No such audio")
        }
        // As long as the task asked for (10 s when it did not say).
        let seconds = task.audioLength ?? 10
        return Response(
            status: .ok, headers: [.contentType: "audio/wav"],
            body: ResponseBody(contentLength: WAV.size(seconds: seconds)) { writer in
                try await WAV.write(for: task.prompt, seconds: seconds, to: &writer)
            })
    }

    private func keyList() -> Response {
        let data = (try? JSONEncoder().encode(keyCounts.values.sorted { $0.key < $1.key })) ?? Data("[]".utf8)
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    private func taskList() -> Response {
        let encoder = JSONEncoder()
        // To the millisecond, as the ledger keeps its times: benchmarks compare the two.
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamp.string(date))
        }
        let data = (try? encoder.encode(acceptedTasks)) ?? Data("[]".utf8)
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    // MARK: Helpers

    /// Answers as a service far away does: the request reaches the service (and its limits)
    /// after the network's jitter, and the answer leaves after the service's own time.
    private func travelling(_ answer: () async throws -> Response) async throws -> Response {
        let network = configuration.networkJitter * random.double(in: 0...1)
        if network > .zero { try await Task.sleep(for: network) }
        let response = try await answer()
        let work = configuration.latency + configuration.latencyJitter * random.double(in: 0...1)
        if work > .zero { try await Task.sleep(for: work) }
        return response
    }

    @discardableResult
    private func count(_ kind: String, _ response: Response? = nil) -> Response {
        answers[kind, default: 0] += 1
        return response ?? Response(status: .ok)
    }

    private func rateLimited(retryIn seconds: Double) -> Response {
        var response = error(.tooManyRequests, "Rate limit exceeded")
        switch configuration.retryAfter {
        case .seconds: response.headers[.retryAfter] = String(Int(seconds.rounded(.up)))
        case .httpDate:
            response.headers[.retryAfter] = HTTPDate.format(Date().addingTimeInterval(seconds.rounded(.up) + 1))
        case .none: break
        }
        return response
    }

    private func error(_ status: HTTPResponse.Status, _ text: String) -> Response {
        json(status, ["success": false, "error": text])
    }

    private func json(_ status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    private func htmlPage(_ status: HTTPResponse.Status) -> Response {
        let html =
            "<html><head><title>\(status.code) \(status.reasonPhrase)</title></head><body><center><h1>\(status.code) \(status.reasonPhrase)</h1></center><hr><center>nginx</center></body></html>"
        return Response(
            status: status, headers: [.contentType: "text/html"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func formFields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String {
                part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(part)
            }
            fields[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }

    static func jsonFields(_ data: Data) -> [String: String] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object.compactMapValues { value in
            switch value {
            case let text as String: text
            case let number as NSNumber: number.stringValue
            default: nil
            }
        }
    }

    static func origin(of request: Request) -> String {
        "http://\(request.head.authority ?? "127.0.0.1")"
    }

    static func iso(_ date: Date) -> String { date.ISO8601Format() }

}

/// The request context, keeping the connection so a fault can drop it.
struct SandboxContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// The server's own limit: requests spaced at the rate, each allowed at most one
/// interval early (a burst of two), so a client at exactly the rate passes whatever its
/// jitter, and one going faster, or bursting, is refused at once.
/// How the sandbox enforces a rate: servers hold the same limit in different ways, and a
/// client must keep to any of them.
public enum LimiterShape: String, Sendable, CaseIterable {
    /// A token bucket with room for two: a request may come one interval early.
    case bucket
    /// At most the limit's count in any 60 seconds.
    case window
    /// A strict leaky bucket: never sooner than one interval after the last one admitted.
    case strict
}

/// One limit as the server enforces it; times are seconds on any steady clock.
struct ServerRateLimit {
    let shape: LimiterShape
    let interval: Double
    let perWindow: Int
    /// bucket: when the next request is due; strict: the last admitted.
    private var mark: Double?
    /// window: the times admitted in the last 60 seconds, oldest first.
    private var admitted: [Double] = []

    init(perMinute: Double, shape: LimiterShape = .bucket) {
        self.shape = shape
        interval = 60 / perMinute
        perWindow = max(Int(perMinute.rounded(.down)), 1)
    }

    /// Admits a request at `now`, or says how many seconds until one would be admitted.
    mutating func admit(at now: Double) -> (admitted: Bool, retryIn: Double) {
        switch shape {
        case .bucket:
            let due = mark ?? now
            if due - now > interval { return (false, due - now - interval) }
            mark = max(due, now) + interval
        case .window:
            admitted.removeAll { now - $0 >= 60 }
            if admitted.count >= perWindow { return (false, admitted[0] + 60 - now) }
            admitted.append(now)
        case .strict:
            if let last = mark, now - last < interval { return (false, last + interval - now) }
            mark = now
        }
        return (true, 0)
    }

    /// `admit` on the continuous clock.
    mutating func admit(now: ContinuousClock.Instant) -> (admitted: Bool, retryIn: Double) {
        admit(at: ServerRateLimit.origin.duration(to: now).seconds)
    }

    /// A fixed instant to measure from.
    private static let origin = ContinuousClock.now
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let factor = Foundation.pow(10, Double(places))
        return (self * factor).rounded() / factor
    }
}

/// A small seeded generator (SplitMix64), so a sandbox run, or a test, can be replayed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    mutating func double(in range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * Double(next() >> 11) / Double(1 << 53)
    }

    /// A standard normal draw (Box–Muller).
    mutating func normal() -> Double {
        let u = max(double(in: 0...1), .leastNonzeroMagnitude)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * double(in: 0...1))
    }
}

/// The sandbox soundbatch starts for a batch run against it (`--sandbox`), with a key
/// it takes; its tasks are kept in the state file it is given.
public struct BuiltInSandbox: SandboxLauncher {
    public var configuration: SandboxConfiguration

    public init(configuration: SandboxConfiguration = SandboxConfiguration()) {
        self.configuration = configuration
    }

    public func withSandbox<T: Sendable>(
        port: Int, stateFile: String, _ body: (String, Int, APIKey) async throws -> T
    ) async throws -> T {
        var configuration = configuration
        configuration.port = port
        configuration.stateFile = stateFile
        return try await Sandbox.withRunning(configuration) { baseURL, _ in
            let boundPort = baseURL.split(separator: ":").last.flatMap { Int($0) } ?? port
            return try await body(baseURL, boundPort, .sandbox)
        }
    }
}
