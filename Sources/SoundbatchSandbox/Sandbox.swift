import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Serving
import SoundbatchAudio
import SoundbatchCore

/// A local stand-in for the MusicGPT API, faithful to `../shared/api/`: the submit and
/// status endpoints, auth, validation, rate limits with Retry-After, credits, injected
/// failures, and tasks that finish with a real WAV file to fetch.
///
/// `GET /_sandbox/tasks` (outside the API's paths) lists every task accepted, so tests
/// and the fault harness can compare it with the ledger.
public actor Sandbox {
    public let configuration: SandboxConfiguration
    var random: SeededRandom
    var tasks: [String: SandboxTask] = [:]
    var order: [String] = []
    var creditsLeft: Double?
    /// The limits in force, by key (by "" when keys share them).
    var submitWindows: [String: ServerRateLimit] = [:]
    var lookWindows: [String: ServerRateLimit] = [:]
    /// What each key asked and was refused, for tests and benchmarks (`/_sandbox/keys`).
    var keyCounts: [String: KeyCounts] = [:]
    /// Counts of answers by kind, for tests.
    public internal(set) var answers: [String: Int] = [:]
    /// Tasks whose webhook was called.
    var notified: Set<String> = []

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
    struct SavedTask: Codable {
        var task: SandboxTask
        var seconds: Double
    }

    /// The tasks a state file holds; a line that cannot be read (cut off by a kill) is skipped.
    static func savedTasks(in path: String) -> [SavedTask] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap {
            try? JSONDecoder().decode(SavedTask.self, from: $0)
        }
    }

    /// Appends the task to the state file: one line, so that a kill loses at most that line.
    func save(_ task: SandboxTask, seconds: Double) {
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
        router.get("/audio/:file") { _, context in
            try await self.audio(named: context.parameters.get("file") ?? "")
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
    var errorPagesUntil: ContinuousClock.Instant?

    func answerErrorPages(for duration: Duration) {
        errorPagesUntil = .now + duration
    }

    var inErrorPages: Bool { errorPagesUntil.map { ContinuousClock.now < $0 } ?? false }

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

    func submit(_ request: Request, channel: any Channel) async throws -> Response {
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

    struct OutOfCredits: Error {}

    /// 401 without a key, 403 with one other than `--api-key`; nil when the key is fine.
    func authorize(_ request: Request) -> Response? {
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
    func keyLabel(_ request: Request) -> String {
        configuration.apiKeys.firstIndex(of: request.headers[.authorization] ?? "").map { "key \($0 + 1)" } ?? "any"
    }

    /// Counts the request against its key's limit (or everyone's); the seconds until it
    /// would be allowed when it is refused, else nil.
    func limited(_ request: Request, _ kind: PacedRequests) -> Double? {
        let key = request.headers[.authorization] ?? ""
        let label = keyLabel(request)
        let window = configuration.perKey ? key : ""
        let perMinute = kind == .submissions ? configuration.submitsPerMinute : configuration.looksPerMinute
        var counts = keyCounts[label] ?? KeyCounts(key: label)
        defer { keyCounts[label] = counts }
        if kind == .submissions { counts.submissions += 1 } else { counts.looks += 1 }
        guard let perMinute else { return nil }
        var limit =
            (kind == .submissions ? submitWindows[window] : lookWindows[window])
            ?? ServerRateLimit(perMinute: perMinute, shape: configuration.limiter)
        defer {
            if kind == .submissions { submitWindows[window] = limit } else { lookWindows[window] = limit }
        }
        let (admitted, retryIn) = limit.admit(now: .now)
        if admitted { return nil }
        if kind == .submissions { counts.submissionsRefused += 1 } else { counts.looksRefused += 1 }
        return retryIn
    }

    /// Drops the connection with no answer, as a crashed proxy or a network fault would.
    func reset(_ channel: any Channel) async throws -> Response {
        try? await channel.close()
        throw CancellationError()
    }

    func accept(prompt: String, audioLength: Int?, webhookURL: String?, key: String) throws -> SandboxTask {
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
        var task = SandboxTask(
            taskID: String(format: "sbx-task-%06d-%08x", number, random.next() & 0xFFFF_FFFF),
            conversionID: String(format: "sbx-conv-%06d", number),
            prompt: prompt, audioLength: audioLength, webhookURL: webhookURL,
            creditEstimate: estimate,
            conversionCost: (estimate * random.double(in: 0.9...1.1)).rounded(toPlaces: 2),
            eta: eta, willFail: random.double(in: 0...1) < configuration.generationFailureRate,
            createdAt: createdAt, finishesAt: createdAt.addingTimeInterval(seconds), key: key)
        (task.defect, task.soundOf) = pickDefect(prompt: prompt, audioLength: audioLength)
        tasks[task.taskID] = task
        order.append(task.taskID)
        save(task, seconds: seconds)
        return task
    }

    /// Whether a new task's sound comes out wrong (`defectShare`), and how: a defect it can
    /// have, at random; a duplicate copies the first earlier task of the prompt, as long,
    /// that came out right.
    func pickDefect(prompt: String, audioLength: Int?) -> (SandboxConfiguration.Defect?, String?) {
        guard configuration.defectShare > 0, random.double(in: 0...1) < configuration.defectShare else {
            return (nil, nil)
        }
        let original = order.lazy.compactMap { self.tasks[$0] }.first {
            $0.prompt == prompt && $0.audioLength == audioLength && $0.defect == nil && !$0.willFail
        }
        let possible = configuration.defectKinds.filter { defect in
            switch defect {
            case .short: audioLength != nil
            case .duplicate: original != nil
            default: true
            }
        }
        guard !possible.isEmpty else { return (nil, nil) }
        let defect = possible[Int(random.next() % UInt64(possible.count))]
        return (defect, defect == .duplicate ? original?.taskID : nil)
    }

    func pickFailure() -> SandboxConfiguration.FailureKind? {
        guard configuration.failureRate > 0, !configuration.failureKinds.isEmpty,
            random.double(in: 0...1) < configuration.failureRate
        else { return nil }
        return configuration.failureKinds[Int(random.next() % UInt64(configuration.failureKinds.count))]
    }

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
