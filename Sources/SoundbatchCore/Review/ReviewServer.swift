import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Serving
import SoundbatchAudio

/// Serves one batch's review page from the ledger: every row with every take, to play,
/// keep, reject or re-roll. Who may use it is `ReviewGate`'s rule; what it reads and
/// writes goes through the ledger's `ReviewLedger` promises, so both backends serve it.
///
/// Routes: `/` the page (`/?token=` sets the cookie); `/review.js`, `/review.css` its code;
/// `GET /api/rows` a page of rows (`q`, `state`, `verdict`, `checks`, `offset`, `limit`, or `jobs`);
/// `GET /audio/JOB/TAKE` a take's sound: its file on this machine, else the ledger's copy
/// (`SoundFiles`), kept for as long as the page is served;
/// `POST /api/verdict`; `POST /api/reroll/plan` what a re-roll would send and cost;
/// `POST /api/reroll` sends it; `GET /api/reroll` where it stands.
public struct ReviewServer: Sendable {
    public let batch: String
    public let gate: ReviewGate
    let batchID: Int64
    let ledger: any LedgerStore
    let run: BatchRun
    let rerolls: Rerolls
    /// Where re-rolled sounds are saved when the batch remembers no folder.
    let fallbackFolder: String

    /// A review of `run`'s batch; re-rolls go as `run` sends, with `key`, and `onRerolled`
    /// hears how each ended (the command line prints it).
    public init(
        run: BatchRun, key: @escaping KeySource, gate: ReviewGate = ReviewGate(), fallbackFolder: String,
        onRerolled: @escaping @Sendable (RunReport) -> Void = { _ in }
    ) async throws {
        batch = run.batch
        batchID = try await run.ledger.batchID(named: run.batch)
        try await run.ledger.requireKnownStates(batchID: batchID)
        ledger = run.ledger
        self.run = run
        self.gate = gate
        self.fallbackFolder = fallbackFolder
        let remembered = try await run.ledger.settings(ofBatch: batchID) ?? BatchSettings()
        var given = BatchSettings()
        given.wait = true
        given.download = remembered.download ?? fallbackFolder
        rerolls = Rerolls(run: run, key: key, given: given, onEnded: onRerolled)
    }

    /// Serves the page for as long as `body` runs, then stops gracefully; a re-roll under
    /// way ends as a run does when the batch run's stop signal is set. `body` gets the
    /// page's address, with its token.
    public func serve<Value: Sendable>(
        host: String, port: Int, logger: Logger, while body: (_ address: String) async throws -> Value
    ) async throws -> Value {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await rerolls.work() }
            let outcome: Result<Value, any Error>
            do {
                outcome = .success(
                    try await SoundFiles.with(store: ledger.soundStore, keepsCopies: true) { files in
                        try await serving(
                            router(files).buildResponder(), host: host, port: port, serverName: "soundbatch-review",
                            logger: logger
                        ) { boundPort in
                            let shownHost = host.contains(":") ? "[\(host)]" : host == "0.0.0.0" ? "127.0.0.1" : host
                            return try await body("http://\(shownHost):\(boundPort)/?token=\(gate.token)")
                        }
                    })
            } catch { outcome = .failure(error) }
            await rerolls.finish()
            try await group.waitForAll()
            return try outcome.get()
        }
    }

    func router(_ files: SoundFiles) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: Guard(gate: gate))
        router.get("/") { request, _ in try await self.page(request) }
        router.get("/review.js") { _, _ in Self.asset(ReviewPageAssets.script, type: "text/javascript; charset=utf-8") }
        router.get("/review.css") { _, _ in Self.asset(ReviewPageAssets.style, type: "text/css; charset=utf-8") }
        router.get("/api/rows") { request, _ in try await self.rows(request, files: files) }
        router.get("/audio/:job/:take") { request, context in
            try await self.audio(request, context: context, files: files)
        }
        router.post("/api/verdict") { request, _ in try await self.verdict(request) }
        router.post("/api/reroll/plan") { request, _ in try await self.reroll(request, send: false) }
        router.post("/api/reroll") { request, _ in try await self.reroll(request, send: true) }
        router.get("/api/reroll") { _, _ in Self.json(await self.rerolls.current) }
        return router
    }

    // MARK: The page

    private func page(_ request: Request) async throws -> Response {
        if let token = request.uri.queryParameters["token"], gate.matches(String(token)) {
            // Trade the token for the cookie, and take it out of the address bar and history.
            var response = Response(status: .seeOther, headers: [.location: "/"])
            response.setCookie(gate.cookie)
            return response
        }
        guard let cookie = request.cookies[gate.cookieName]?.value, gate.matches(cookie) else {
            return Self.refused(.forbidden, ReviewGate.Refusal.token.rawValue, html: true)
        }
        return Self.asset(ReviewPageAssets.page(batch: batch, token: gate.token), type: "text/html; charset=utf-8")
    }

    private static func asset(_ text: String, type: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: Rows

    private func rows(_ request: Request, files: SoundFiles) async throws -> Response {
        let parameters = request.uri.queryParameters
        var query = ReviewQuery()
        query.search = parameters["q"].map(String.init)
        if let state = parameters["state"], !state.isEmpty {
            guard let known = JobState(rawValue: String(state)) else {
                return Self.refused(.badRequest, "no state \(state)")
            }
            query.state = known
        }
        if let verdict = parameters["verdict"], !verdict.isEmpty {
            guard let known = ReviewQuery.VerdictFilter(rawValue: String(verdict)) else {
                return Self.refused(.badRequest, "no verdict filter \(verdict)")
            }
            query.verdict = known
        }
        if let checks = parameters["checks"], !checks.isEmpty {
            guard ["flagged", "clean"].contains(checks) else {
                return Self.refused(.badRequest, "no checks filter \(checks)")
            }
            query.flagged = checks == "flagged"
        }
        if let jobs = parameters["jobs"] {
            query.jobIDs = jobs.split(separator: ",").compactMap { Int64($0) }
        }
        query.offset = max(parameters["offset"].flatMap { Int($0) } ?? 0, 0)
        query.limit = min(max(parameters["limit"].flatMap { Int($0) } ?? 50, 1), 200)
        var page = try await ledger.reviewPage(batch: batch, query)
        for index in page.rows.indices { try await measureSounds(of: &page.rows[index], files: files) }
        return Self.json(page)
    }

    /// Sounds saved before soundbatch measured them (older ledgers, or a file put back by
    /// hand) are measured once, when first shown, and the ledger keeps what was found.
    private func measureSounds(of row: inout ReviewRow, files: SoundFiles) async throws {
        for index in row.takes.indices where row.takes[index].saved && row.takes[index].peaks == nil {
            let (job, take) = (row.takes[index].jobID, row.takes[index].take)
            guard let saved = try await ledger.sound(jobID: job, take: take)?.sound,
                let sound = try? await files.withFile(saved, { try SoundFile(reading: $0) })
            else { continue }
            let summary = SoundSummary(seconds: sound.seconds, peaks: sound.peaks())
            try await ledger.recordSound(summary, jobID: job, take: take)
            row.takes[index].peaks = summary.peaksText
            row.takes[index].seconds = summary.seconds
        }
    }

    /// Whether a job is this batch's: nothing of another batch is shown or changed.
    private func isInBatch(_ job: Int64) async throws -> Bool {
        try await !ledger.reviewRows(batchID: batchID, ReviewQuery(jobIDs: [job], limit: 1)).rows.isEmpty
    }

    // MARK: Audio

    private func audio(_ request: Request, context: BasicRequestContext, files: SoundFiles) async throws -> Response {
        guard let job = context.parameters.get("job", as: Int64.self),
            let take = context.parameters.get("take", as: Int.self),
            try await isInBatch(job), let saved = try await ledger.sound(jobID: job, take: take)?.sound
        else { return Self.refused(.notFound, "no saved sound") }
        let path: String
        do {
            // The copy stays for the page's life: a player asks for a sound in several ranges.
            path = try await files.withFile(saved) { $0 }
        } catch let notHere as SoundNotHere {
            return Self.refused(.notFound, "cannot play: \(notHere)")
        }
        guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > 0 else {
            return Self.refused(.notFound, "no saved sound")
        }
        var headers: HTTPFields = [
            .contentType: Self.audioType(of: path), .acceptRanges: "bytes", .cacheControl: "no-store"
        ]
        var status = HTTPResponse.Status.ok
        var range = 0...(size - 1)
        if let asked = request.headers[.range] {
            guard let wanted = Self.byteRange(asked, size: size) else {
                return Response(status: .rangeNotSatisfiable, headers: [.contentRange: "bytes */\(size)"])
            }
            range = wanted
            status = .partialContent
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"
        }
        headers[.contentLength] = String(range.count)
        let body = try await FileIO().loadFile(path: path, range: range, context: context)
        return Response(status: status, headers: headers, body: body)
    }

    static func audioType(of path: String) -> String {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "wav": "audio/wav"
        case "mp3": "audio/mpeg"
        case "flac": "audio/flac"
        case "ogg", "oga": "audio/ogg"
        default: "application/octet-stream"
        }
    }

    /// One range of `bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX`, within the file.
    static func byteRange(_ header: String, size: Int) -> ClosedRange<Int>? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let parts = header.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            .map { String($0).trimmed }
        guard parts.count == 2 else { return nil }
        switch (Int(parts[0]), Int(parts[1])) {
        case let (first?, last?) where first <= last && first < size: return first...min(last, size - 1)
        case let (first?, nil) where parts[1].isEmpty && first < size: return first...(size - 1)
        case let (nil, suffix?) where parts[0].isEmpty && suffix > 0: return max(size - suffix, 0)...(size - 1)
        default: return nil
        }
    }

    // MARK: Verdicts

    struct VerdictAsked: Decodable {
        var job: Int64
        var take: Int
        var verdict: Verdict?
    }

    struct VerdictAnswer: Encodable {
        var row: ReviewRow
        var counts: VerdictCounts
    }

    private func verdict(_ request: Request) async throws -> Response {
        guard let asked = try await Self.decode(VerdictAsked.self, request) else {
            return Self.refused(
                .badRequest, "expected {\"job\": N, \"take\": N, \"verdict\": \"kept\", \"rejected\" or null}")
        }
        guard try await isInBatch(asked.job) else { return Self.refused(.notFound, "no such row in batch \(batch)") }
        switch try await ledger.setVerdict(asked.verdict, jobID: asked.job, take: asked.take) {
        case .recorded: break
        case .noSuchTake: return Self.refused(.notFound, "the row has no take \(asked.take)")
        case let .notASound(state): return Self.refused(.conflict, "take \(asked.take) is \(state.words), not a sound")
        }
        let page = try await ledger.reviewPage(batch: batch, ReviewQuery(jobIDs: [asked.job], limit: 1))
        guard let row = page.rows.first else { return Self.refused(.notFound, "no such row in batch \(batch)") }
        return Self.json(VerdictAnswer(row: row, counts: page.counts))
    }

    // MARK: Re-rolls

    struct RerollAsked: Decodable {
        /// Rows by job, or every row whose latest sound is rejected.
        var jobs: [Int64]?
        var rejected: Bool?
        /// An edited prompt for the new take: one row only.
        var prompt: String?
    }

    struct RerollPlanAnswer: Encodable {
        var jobs: [Int64]
        var rows: [String]
        /// About what the new takes may cost; nil while the batch has no estimate at all.
        var credits: Double?
        var likelyToFailAgain: [String]
        var service: String
        var folder: String
        var busy: Bool
    }

    /// What a re-roll would send, or (with `send`) sends it. The plan is made again from the
    /// ledger each time: nothing the page says of jobs or costs is taken on trust.
    private func reroll(_ request: Request, send: Bool) async throws -> Response {
        guard let asked = try await Self.decode(RerollAsked.self, request),
            asked.jobs?.isEmpty == false || asked.rejected == true
        else { return Self.refused(.badRequest, "expected {\"jobs\": [N, ...]} or {\"rejected\": true}") }
        let jobs = asked.jobs ?? []
        var plan = try await run.planRetry(states: nil, rows: [], rejected: asked.rejected ?? false, jobIDs: jobs)
        guard !plan.jobs.isEmpty, plan.jobs.count >= Set(jobs).count else {
            return Self.refused(
                .conflict,
                plan.jobs.isEmpty && asked.rejected == true
                    ? "no row's latest sound is rejected" : "a row is still being made: re-roll it once it has finished"
            )
        }
        if let prompt = asked.prompt?.trimmed, !prompt.isEmpty {
            guard plan.jobs.count == 1, let job = plan.jobs.first else {
                return Self.refused(.badRequest, "an edited prompt is for one row at a time")
            }
            plan.prompts[job.id] = prompt
        }
        let status = try await ledger.status(batch: batch).first
        let unsent = (status?.count(.pending) ?? 0) + (status?.count(.inDoubt) ?? 0)
        if unsent > 0 {
            // A retry sends every pending job of the batch: more than the page said it would.
            return Self.refused(
                .conflict,
                "the batch has \(unsent) job\(unsent == 1 ? "" : "s") not sent yet (pending or in doubt); "
                    + "send them first with `soundbatch resume --batch \(batch)`")
        }
        if send {
            guard await rerolls.start(plan) else {
                return Self.refused(.conflict, "a re-roll is under way; wait for it")
            }
            return Self.json(await rerolls.current, status: .accepted)
        }
        let settings = status?.settings ?? BatchSettings()
        return Self.json(
            RerollPlanAnswer(
                jobs: plan.jobs.map(\.id), rows: plan.jobs.map(\.row), credits: plan.forecast,
                likelyToFailAgain: plan.likelyToFailAgain.map(\.row),
                service: (settings.service ?? .api(baseURL: run.fallbackBaseURL)).description,
                folder: settings.download ?? fallbackFolder, busy: await rerolls.current.busy))
    }

    // MARK: Answers

    private static func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T? {
        guard let body = try? await request.body.collect(upTo: 64 * 1024) else { return nil }
        return try? JSONDecoder().decode(type, from: Data(body.readableBytesView))
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONEncoder().encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func refused(_ status: HTTPResponse.Status, _ reason: String, html: Bool = false) -> Response {
        if html {
            return Response(
                status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: ReviewPageAssets.refusal(reason))))
        }
        return json(["error": reason], status: status)
    }

    /// Every answer: the gate's test first, then headers that keep the page to itself (no
    /// frames, no scripts but its own, no address leaked to others).
    struct Guard: RouterMiddleware {
        typealias Context = BasicRequestContext
        let gate: ReviewGate

        func handle(
            _ request: Request, context: Context, next: (Request, Context) async throws -> Response
        ) async throws -> Response {
            var response: Response
            let open = ["/", "/review.js", "/review.css"].contains(request.uri.path) && request.method == .get
            let refusal =
                request.method == .get || request.method == .head
                ? (open ? (gate.hostAllowed(request.head.authority) ? nil : .host) : gate.refusalToRead(request))
                : gate.refusalToChange(request)
            if let refusal {
                response = ReviewServer.refused(.forbidden, refusal.rawValue, html: request.uri.path == "/")
            } else {
                response = try await next(request, context)
            }
            response.headers[.contentSecurityPolicy] =
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
                + "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
            response.headers[.xContentTypeOptions] = "nosniff"
            response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
            return response
        }
    }
}
