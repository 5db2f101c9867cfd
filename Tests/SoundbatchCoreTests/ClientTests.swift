import Foundation
import NIOHTTP1
import SoundbatchSandbox
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite

@Suite struct ClientDecodingTests {
    func outcome(_ status: Int, _ body: String, headers: HTTPHeaders = [:]) -> SubmitOutcome {
        MusicGPTClient.outcome(status: status, headers: headers, body: Data(body.utf8), bodyProblem: nil)
    }

    @Test func theDocumentedExampleIsAccepted() {
        let answer = outcome(
            200,
            #"{"success": true, "task_id": "soundgen789", "conversion_id": "conv456", "eta": -1, "credit_estimate": 100.1, "message": "Successfully published to queue"}"#
        )
        #expect(
            answer
                == .accepted(
                    SubmitAnswer(
                        taskID: "soundgen789", conversionID: "conv456", eta: nil,
                        creditEstimate: 100.1, message: "Successfully published to queue")))
    }

    @Test func extraFieldsMissingConversionIDAndIntegerEstimateAreFine() {
        let answer = outcome(
            200, #"{"success":true,"task_id":"t1","eta":12,"credit_estimate":3,"queue":{"position":4},"new":[1,2]}"#)
        #expect(answer == .accepted(SubmitAnswer(taskID: "t1", conversionID: nil, eta: 12, creditEstimate: 3)))
    }

    @Test func successFalseInsideA200IsARefusalWithTheReason() {
        #expect(
            outcome(200, #"{"success": false, "error": "Prompt violates policy"}"#)
                == .rejected(status: 200, error: "Prompt violates policy"))
    }

    @Test func a200WithoutAUsableTaskIDIsAmbiguousNotLost() {
        for body in [
            #"{"success": true}"#, #"{"success": true, "task_id": ""}"#, #"{"success": true, "task_id": "  "}"#,
            "<html>OK</html>", "", "{not json"
        ] {
            guard case .noAnswer(status: 200, _) = outcome(200, body) else {
                Issue.record("\(body) was not ambiguous: \(outcome(200, body))")
                continue
            }
        }
    }

    @Test func errorClassesFollowTheContract() {
        let json = #"{"success": false, "error": "nope"}"#
        for status in [400, 404, 409, 422] {
            #expect(outcome(status, json) == .rejected(status: status, error: "HTTP \(status): nope"))
        }
        #expect(outcome(401, json) == .keyRejected(status: 401, error: "nope"))
        #expect(outcome(403, json) == .keyRejected(status: 403, error: "nope"))
        #expect(outcome(402, json) == .outOfCredits(error: "nope"))
        for status in [408, 429, 500, 503] {
            #expect(outcome(status, json) == .retryable(status: status, error: "HTTP \(status): nope", retryAfter: nil))
        }
    }

    @Test func aProxyHTMLPageIsRetryableWithReadableText() {
        let page = "<html><head><title>502 Bad Gateway</title></head>\n<body><h1>502 Bad Gateway</h1></body></html>"
        #expect(
            outcome(502, page)
                == .retryable(status: 502, error: "HTTP 502: 502 Bad Gateway 502 Bad Gateway", retryAfter: nil))
    }

    @Test func retryAfterInSecondsOrAsAnHTTPDate() {
        #expect(RetryAfter.parse("7") == .seconds(7))
        #expect(RetryAfter.parse(" 1.5 ") == .milliseconds(1500))
        let now = Date(timeIntervalSince1970: 1_784_000_000)
        let later = "Tue, 14 Jul 2026 03:33:40 GMT"  // 20 s after `now`
        #expect(RetryAfter.parse(later, now: now) == .seconds(20))
        #expect(RetryAfter.parse("Thu, 01 Jan 1970 00:00:00 GMT", now: now) == .zero)
        #expect(RetryAfter.parse("soon") == nil)
        #expect(
            outcome(429, "{}", headers: ["Retry-After": "3"])
                == .retryable(status: 429, error: "HTTP 429: {}", retryAfter: .seconds(3)))
    }

    @Test func aRedirectIsNotFollowed() {
        guard case let .rejected(status, error) = outcome(307, "", headers: ["Location": "https://elsewhere.example/x"])
        else {
            Issue.record("a redirect was not refused")
            return
        }
        #expect(status == 307)
        #expect(error.contains("https://elsewhere.example/x") && error.contains("--base-url"))
    }

    @Test func theKeyNeverShowsInADescription() {
        let key = APIKey("sk-live-abcdef")!
        #expect("\(key)" == "<api key>")
        #expect(String(reflecting: key) == "<api key>")
        #expect(APIKey("   ") == nil)
    }

    @Test func formEncoding() {
        #expect(
            FormEncoding.encode([("prompt", "rain & thunder, 100% loud"), ("audio_length", "5")])
                == "prompt=rain+%26+thunder%2C+100%25+loud&audio_length=5")
    }
}

/// The client against the sandbox over loopback: each error class of the contract.
@Suite struct ClientOverHTTPTests {
    func submit(
        _ configuration: SandboxConfiguration, key: String = "test-key",
        _ request: SubmitRequest = SubmitRequest(prompt: "a door creaks"), times: Int = 1
    ) async throws -> [SubmitOutcome] {
        try await Sandbox.withRunning(configuration) { url, _ in
            let client = MusicGPTClient(baseURL: url, key: APIKey(key)!, timeout: .seconds(5))
            var outcomes: [SubmitOutcome] = []
            for _ in 0..<times { outcomes.append(await client.submit(request)) }
            await client.shutdown()
            return outcomes
        }
    }

    func unlimited() -> SandboxConfiguration {
        var configuration = SandboxConfiguration()
        configuration.submitsPerMinute = nil
        return configuration
    }

    @Test func acceptedTasksMatchTheSandboxRecord() async throws {
        let (outcomes, tasks) = try await Sandbox.withRunning(unlimited()) { url, sandbox in
            let client = MusicGPTClient(baseURL: url, key: APIKey("k")!)
            var outcomes: [SubmitOutcome] = []
            for length in [nil, 5, 30] {
                outcomes.append(
                    await client.submit(
                        SubmitRequest(prompt: "wind, gusting", audioLength: length, webhookURL: "https://example.com/h")
                    ))
            }
            await client.shutdown()
            return (outcomes, await sandbox.acceptedTasks)
        }
        #expect(tasks.count == 3)
        for (outcome, task) in zip(outcomes, tasks) {
            #expect(
                outcome
                    == .accepted(
                        SubmitAnswer(
                            taskID: task.taskID, conversionID: task.conversionID,
                            eta: task.eta < 0 ? nil : task.eta, creditEstimate: task.creditEstimate,
                            message: "Successfully published to queue")))
            #expect(task.prompt == "wind, gusting")
            #expect(task.webhookURL == "https://example.com/h")
        }
        #expect(tasks.map(\.audioLength) == [nil, 5, 30])
    }

    @Test func theSandboxTakesAsLongAsToldSaysTheETAAsToldAndSendsAsMuchSoundAsAsked() async throws {
        var configuration = unlimited()
        configuration.generationTime = .milliseconds(200)
        configuration.generationFailureRate = 0
        for eta in SandboxConfiguration.ETAStyle.allCases {
            configuration.eta = eta
            let (tasks, sizes) = try await Sandbox.withRunning(configuration) { url, sandbox in
                let client = MusicGPTClient(baseURL: url, key: APIKey("k")!)
                for length in [nil, 3] { _ = await client.submit(SubmitRequest(prompt: "hum", audioLength: length)) }
                await client.shutdown()
                let tasks = await sandbox.acceptedTasks
                // All finished, whatever the spread drew: each by the end the sandbox gave it.
                #expect(try await eventually { tasks.allSatisfy { Date() >= $0.finishesAt ?? $0.createdAt } })
                var sizes: [Int] = []
                for task in tasks { sizes.append(try await bodySize(of: "\(url)/audio/\(task.taskID).wav")) }
                return (tasks, sizes)
            }
            // 16-bit mono at 16 kHz, after a 44-byte header: 10 s when the row did not say.
            #expect(sizes == [44 + 10 * 32_000, 44 + 3 * 32_000])
            for task in tasks {
                let seconds = try #require(task.finishesAt).timeIntervalSince(task.createdAt)
                #expect(seconds > 0.01 && seconds < 1)
                switch eta {
                case .unknown: #expect(task.eta == -1)
                case .true: #expect(task.eta == Int(seconds.rounded(.up)))
                case .rough: #expect(task.eta >= 0 && Double(task.eta) <= seconds * 1.3 + 0.5)
                }
            }
        }
    }

    @Test func perKeyEachKeyHasItsOwnLimitAndTheSandboxSaysWhatEachAsked() async throws {
        for perKey in [true, false] {
            var configuration = SandboxConfiguration()
            configuration.apiKeys = ["key-a", "key-b"]
            configuration.perKey = perKey
            configuration.limiter = .strict
            // One request a minute: the second key's request comes within it however busy the machine.
            configuration.submitsPerMinute = 1
            let (refused, keys) = try await Sandbox.withRunning(configuration) { url, _ in
                var refused = 0
                for key in ["key-a", "key-b"] {
                    let client = MusicGPTClient(baseURL: url, key: APIKey(key)!, timeout: .seconds(5))
                    if case .retryable(429, _, _) = await client.submit(SubmitRequest(prompt: "x")) { refused += 1 }
                    await client.shutdown()
                }
                return (refused, try await text(of: url + "/_sandbox/keys"))
            }
            // One request each, at once: two keys with their own limits both go through.
            #expect(refused == (perKey ? 0 : 1))
            #expect(keys.contains(#""key":"key 1""#) && keys.contains(#""submissions_429":\#(perKey ? 0 : 1)"#))
            #expect(!keys.contains("key-a"))
        }
    }

    @Test func aWrongKeyIs403() async throws {
        var configuration = unlimited()
        configuration.apiKeys = ["right"]
        let outcomes = try await submit(configuration, key: "wrong")
        #expect(outcomes == [.keyRejected(status: 403, error: "Invalid API key")])
    }

    @Test func aBlankPromptIs422() async throws {
        let outcomes = try await submit(unlimited(), SubmitRequest(prompt: "  "))
        #expect(outcomes == [.rejected(status: 422, error: "HTTP 422: Prompt is required for sound generation.")])
    }

    @Test func runningOutOfCreditsIs402() async throws {
        var configuration = unlimited()
        configuration.credits = 4
        let outcomes = try await submit(configuration, times: 3)  // each costs 2 without audio_length
        #expect(outcomes.prefix(2).allSatisfy { if case .accepted = $0 { true } else { false } })
        #expect(outcomes[2] == .outOfCredits(error: "Insufficient credits. Please top up your account."))
    }

    @Test(arguments: [SandboxConfiguration.RetryAfterStyle.seconds, .httpDate, .none])
    func goingOverTheRateIs429WithRetryAfter(style: SandboxConfiguration.RetryAfterStyle) async throws {
        var configuration = SandboxConfiguration()
        configuration.submitsPerMinute = 6
        configuration.retryAfter = style
        let outcomes = try await submit(configuration, times: 3)
        guard case .accepted = outcomes[0] else {
            Issue.record("\(outcomes[0])")
            return
        }
        guard case let .retryable(429, _, retryAfter) = outcomes[2] else {
            Issue.record("\(outcomes[2])")
            return
        }
        switch style {
        case .seconds: #expect(retryAfter.map { $0 > .zero && $0 <= .seconds(10) } == true)
        case .httpDate: #expect(retryAfter.map { $0 > .zero && $0 <= .seconds(12) } == true)
        case .none: #expect(retryAfter == nil)
        }
    }

    @Test func injectedFailuresAreSortedAsTheContractSays() async throws {
        func only(_ kind: SandboxConfiguration.FailureKind) -> SandboxConfiguration {
            var configuration = unlimited()
            configuration.failureRate = 1
            configuration.failureKinds = [kind]
            return configuration
        }
        let serverError = try await submit(only(.serverError))[0]
        #expect(serverError == .retryable(status: 500, error: "HTTP 500: Internal Server Error", retryAfter: nil))
        let badGateway = try await submit(only(.badGateway))[0]
        guard case let .retryable(502, text, nil) = badGateway else {
            Issue.record("\(badGateway)")
            return
        }
        #expect(text.contains("502 Bad Gateway") && !text.contains("<"))
        #expect(
            try await submit(only(.successFalse))[0]
                == .rejected(status: 200, error: "Generation queue unavailable, please retry."))
        for kind in [SandboxConfiguration.FailureKind.resetBefore, .resetAfter] {
            let outcome = try await submit(only(kind))[0]
            guard case .noAnswer(nil, _) = outcome else {
                Issue.record("\(kind) was not ambiguous: \(outcome)")
                continue
            }
        }
    }

    @Test func noServerListeningIsRetryable() async throws {
        // A port that was just free: nothing listens there.
        let url = try await Sandbox.withRunning(unlimited()) { url, _ in url }
        let client = MusicGPTClient(baseURL: url, key: APIKey("k")!, timeout: .seconds(5))
        let outcome = await client.submit(SubmitRequest(prompt: "x"))
        await client.shutdown()
        guard case .retryable(nil, _, nil) = outcome else {
            Issue.record("\(outcome)")
            return
        }
    }

    @Test func aSlowAnswerPastTheTimeoutIsAmbiguous() async throws {
        var configuration = unlimited()
        configuration.latency = .seconds(3)
        let outcome = try await Sandbox.withRunning(configuration) { url, _ in
            let client = MusicGPTClient(baseURL: url, key: APIKey("k")!, timeout: .milliseconds(300))
            let outcome = await client.submit(SubmitRequest(prompt: "x"))
            await client.shutdown()
            return outcome
        }
        guard case .noAnswer(nil, let text) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(text.contains("timed out"))
    }
}
