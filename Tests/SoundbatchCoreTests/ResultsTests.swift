import Foundation
import GRDB
import Logging
import SoundbatchTesting
import Testing

@testable import SoundbatchCore
@testable import SoundbatchSQLite
@testable import SoundbatchSandbox

@Suite struct LookScheduleTests {
    /// A schedule that has seen `durations` (each bracketed exactly).
    func learned(_ durations: [Double], audioLength: Int? = nil) -> LookSchedule {
        var schedule = LookSchedule()
        for seconds in durations { schedule.learn(seenAt: seconds, runningAt: seconds, audioLength: audioLength) }
        return schedule
    }

    @Test func untaughtTheFirstLookComesAtTheETAOrAfterTenSecondsThenEveryFive() {
        let schedule = LookSchedule()
        #expect(schedule.firstLook(eta: 25, audioLength: nil) == 25)
        #expect(schedule.firstLook(eta: 0, audioLength: nil) == 0)
        #expect(schedule.firstLook(eta: nil, audioLength: nil) == 10)
        #expect(schedule.firstLook(eta: -1, audioLength: nil) == 10)
        // Every 5 s, or a quarter of the age when longer, at most a minute.
        #expect([10, 19, 40, 100, 400].map { schedule.nextLook(after: $0, audioLength: nil) } == [15, 24, 50, 125, 460])
    }

    @Test func taughtTheLooksComeWhereTasksFinish() {
        // Tasks took 20, 21, ... 39 s.
        let schedule = learned((20..<40).map(Double.init))
        // The first look when a quarter have finished (the 5th of 20)...
        #expect(schedule.firstLook(eta: nil, audioLength: nil) == 24)
        // ...the next when another quarter have (the 10th).
        #expect(schedule.nextLook(after: 24, audioLength: nil) == 29)
        // Near the end, at the longest seen, never under a second apart; never more than 6 s.
        #expect(schedule.nextLook(after: 37.5, audioLength: nil) == 39)
        #expect(schedule.nextLook(after: 38.5, audioLength: nil) == 39.5)
        #expect(learned([10, 10, 10, 10, 50]).nextLook(after: 10, audioLength: nil) == 16)
        // Past every time seen, a quarter of the age, at most a minute.
        #expect(schedule.nextLook(after: 60, audioLength: nil) == 75)
        #expect(schedule.nextLook(after: 1000, audioLength: nil) == 1060)
        // The service's eta is its word.
        #expect(schedule.firstLook(eta: 3, audioLength: nil) == 3)
    }

    @Test func anIdleBudgetIsSpentOnTheFewTasksLeft() {
        let schedule = learned((20..<40).map(Double.init))
        // Alone on 200 looks a minute (a fair share of 0.3 s): a look each second...
        #expect(schedule.nextLook(after: 20, audioLength: nil, fairShare: 0.3) == 21)
        // ...or a twentieth of its age, for a task that has run long.
        #expect(schedule.nextLook(after: 100, audioLength: nil, fairShare: 0.3) == 105)
        // Shared by 40, the budget changes nothing.
        #expect(schedule.nextLook(after: 24, audioLength: nil, fairShare: 12) == 29)
    }

    @Test func aTaskSeenFinishedAtItsFirstLookTeachesTheMiddleOfItsTime() {
        var schedule = LookSchedule()
        for _ in 0..<5 { schedule.learn(seenAt: 10, runningAt: nil, audioLength: nil) }
        #expect(schedule.firstLook(eta: nil, audioLength: nil) == 5)
    }

    @Test func eachAudioLengthIsLearnedApartOnceItHasEnough() {
        var schedule = learned(Array(repeating: 10, count: 20))
        for _ in 0..<4 { schedule.learn(seenAt: 60, runningAt: 60, audioLength: 30) }
        #expect(schedule.firstLook(eta: nil, audioLength: 30) == 10)  // 4 are not enough: the batch's times
        schedule.learn(seenAt: 60, runningAt: 60, audioLength: 30)
        #expect(schedule.firstLook(eta: nil, audioLength: 30) == 60)
        #expect(schedule.firstLook(eta: nil, audioLength: 5) == 10)
    }

    @Test func theOldestTimesAreForgotten() {
        var schedule = learned(Array(repeating: 100, count: 200))
        for _ in 0..<150 { schedule.learn(seenAt: 10, runningAt: 10, audioLength: nil) }
        #expect(schedule.learned == 200)
        #expect(schedule.firstLook(eta: nil, audioLength: nil) == 10)
        #expect(schedule.nextLook(after: 10, audioLength: nil) == 16)  // the 100 s ones are the remaining 50
    }

    @Test func theChanceATaskHasFinishedRanksTheLooksDue() {
        let schedule = learned((20..<40).map(Double.init))
        let chance = schedule.chance(finishedBy: 30, runningAt: 20, eta: nil, audioLength: nil)
        #expect(abs(chance - 10.0 / 19) < 1e-12)  // 10 of the 19 still running at 20 s were done by 30 s
        #expect(schedule.chance(finishedBy: 24, runningAt: nil, eta: nil, audioLength: nil) == 0.25)
        // Past every time seen, the next look is due 10 s on (a quarter of 40 s): a guess of a
        // quarter then, half of that half-way.
        #expect(schedule.chance(finishedBy: 45, runningAt: 40, eta: nil, audioLength: nil) == 0.125)
        #expect(schedule.chance(finishedBy: 5, runningAt: nil, eta: 4, audioLength: nil) == 0.9)
        #expect(schedule.chance(finishedBy: 3, runningAt: nil, eta: 4, audioLength: nil) == 0)
        #expect(LookSchedule().chance(finishedBy: 12, runningAt: 10, eta: nil, audioLength: nil) == 0.1)
        #expect(LookSchedule().chance(finishedBy: 60, runningAt: 10, eta: nil, audioLength: nil) == 0.5)
    }

    @Test func statusesAreComparedWithoutCaseAndUnknownOnesMeanRunning() {
        for (status, phase) in [
            ("COMPLETED", RemoteStatus.Phase.completed), ("completed", .completed), (" Completed ", .completed),
            ("FAILED", .failed), ("failed", .failed), ("PENDING", .running), ("IN_QUEUE", .running),
            ("processing", .running), ("In_Progress", .running), ("SOMETHING_NEW", .running), ("", .running)
        ] {
            #expect(RemoteStatus(status: status).phase == phase, "\(status)")
        }
    }

    @Test func statusAnswersAreReadLeniently() {
        let body =
            #"{"success":true,"conversion":{"task_id":"t","status":"Completed","status_msg":"ok","audio_url":"http://x/a.wav","conversion_cost":"2.5","extra":[1]}}"#
        #expect(
            MusicGPTClient.statusOutcome(status: 200, headers: [:], body: Data(body.utf8))
                == .found(
                    RemoteStatus(
                        taskID: "t", status: "Completed", statusMessage: "ok", audioURL: "http://x/a.wav",
                        conversionCost: 2.5)))
        guard case .retryable = MusicGPTClient.statusOutcome(status: 200, headers: [:], body: Data("<html>".utf8))
        else {
            Issue.record("an unreadable answer was taken")
            return
        }
        #expect(
            MusicGPTClient.statusOutcome(status: 403, headers: [:], body: Data(#"{"error":"no"}"#.utf8))
                == .keyRejected(status: 403, error: "no"))
    }
}

/// Tracking, downloading and callbacks against the sandbox, with a real ledger.
@Suite struct ResultsTests {
    let folder = try! TemporaryFolder()

    func quietLogger() -> Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    /// A ledger with `count` jobs submitted to the sandbox (ids "j1"...), or with the given ids.
    func submitted(_ count: Int = 0, ids: [String]? = nil, url: String) async throws -> (SQLiteLedger, Int64) {
        let keys = ids ?? (1...count).map { "j\($0)" }
        let rows = keys.enumerated().map {
            "\"\($0.element.replacingOccurrences(of: "\"", with: "\"\""))\",sound \($0.offset)"
        }
        let csv = try folder.write("b.csv", "id,prompt\n" + rows.joined(separator: "\n"))
        let ledger = try SQLiteLedger(path: folder.file("ledger.sqlite"))
        _ = try await ledger.ingest(CSVReader(path: csv), batch: "b", skipInvalid: false)
        let batchID = try await ledger.batchID(named: "b")
        try await sendAll(batchID, of: ledger, to: url)
        return (ledger, batchID)
    }

    /// Sends every pending job of the batch to the sandbox at `url`, quickly.
    func sendAll(
        _ batchID: Int64, of ledger: SQLiteLedger, to url: String, webhookURL: String? = nil,
        callbackTokens: Bool = false
    ) async throws {
        var settings = DispatchSettings()
        settings.rate = Rate("1000/s")!
        settings.webhookURL = webhookURL
        settings.callbackTokens = callbackTokens
        let client = MusicGPTClient(baseURL: url, key: APIKey("k")!)
        _ = try await Dispatcher(
            ledger: ledger, submitter: client, settings: settings, clock: ContinuousClock(),
            stop: StopSignal(), logger: quietLogger()
        ).run(batchID: batchID)
        await client.shutdown()
    }

    func fastTracking(_ tweak: (inout TrackSettings) -> Void = { _ in }) -> TrackSettings {
        var settings = TrackSettings()
        settings.lookRate = Rate("1000/s")!
        settings.schedule.priorFirstLook = 0.05
        settings.schedule.priorGap = 0.05
        settings.schedule.minGap = 0.02
        settings.schedule.likelyGap = 0.2
        settings.schedule.maxGap = 0.2
        tweak(&settings)
        return settings
    }

    func quickTasks(_ tweak: (inout SandboxConfiguration) -> Void = { _ in }) -> SandboxConfiguration {
        .with {
            $0.submitsPerMinute = nil
            $0.looksPerMinute = nil
            $0.generationTime = .milliseconds(400)
            $0.eta = .true
            tweak(&$0)
        }
    }

    func follow(
        _ ledger: SQLiteLedger, _ batchID: Int64, url: String, settings: TrackSettings,
        download: DownloadSettings? = nil
    ) async throws -> TrackCounters {
        let client = MusicGPTClient(baseURL: url, key: APIKey("k")!)
        // The service's eta is in whole seconds; track as if they had passed.
        let stop = StopSignal()
        let tracker = Tracker(
            ledger: ledger, checker: client, settings: settings, clock: ContinuousClock(),
            wallClock: { Date().addingTimeInterval(60) }, stop: stop, logger: quietLogger())
        let downloader = try download.map { try Downloader(ledger: ledger, settings: $0) }
        let counters = try await Results.follow(
            batchID: batchID, ledger: ledger, tracker: tracker,
            downloader: downloader, stop: stop, logger: quietLogger())
        await client.shutdown()
        await downloader?.shutdown()
        return counters
    }

    func rows(_ ledger: SQLiteLedger) async throws -> [Row] {
        try ledger.database.read { try Row.fetchAll($0, sql: "SELECT * FROM jobs ORDER BY id") }
    }

    @Test func everyTaskIsFollowedToItsEndAndRecorded() async throws {
        try await Sandbox.withRunning(
            quickTasks {
                $0.generationFailureRate = 0.3
                $0.seed = 9
            }
        ) { url, sandbox in
            let (ledger, batchID) = try await submitted(20, url: url)
            let counters = try await follow(ledger, batchID, url: url, settings: fastTracking())
            let tasks = Dictionary(uniqueKeysWithValues: await sandbox.acceptedTasks.map { ($0.taskID, $0) })
            #expect(counters.completed + counters.generationFailed == 20)
            #expect(counters.generationFailed > 0 && counters.completed > 0)
            for row in try await rows(ledger) {
                let task = try #require(tasks[row["task_id"] as String])
                if task.willFail {
                    #expect(row["state"] == "generation_failed")
                    #expect((row["status_msg"] as String?)?.contains("Generation failed") == true)
                    #expect(row["conversion_cost"] as Double? == nil)
                } else {
                    #expect(row["state"] == "completed")
                    #expect(row["remote_status"] == "COMPLETED")
                    #expect(row["conversion_cost"] == task.conversionCost)
                    #expect((row["audio_url"] as String?)?.hasSuffix("/audio/\(task.taskID).wav") == true)
                }
                #expect(row["completed_at"] as String? != nil)
            }
            let polls = try await ledger.database.read {
                try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM attempts WHERE kind = 'look'")!
            }
            #expect(polls == counters.looks)
        }
    }

    @Test func onceLooksAtEachUnfinishedJobOneTime() async throws {
        try await Sandbox.withRunning(quickTasks { $0.generationTime = .seconds(100) }) { url, _ in
            let (ledger, batchID) = try await submitted(5, url: url)
            let counters = try await follow(ledger, batchID, url: url, settings: fastTracking { $0.once = true })
            #expect(counters.looks == 5)
            #expect(counters.completed == 0)
            #expect(
                try await rows(ledger).allSatisfy {
                    $0["state"] == "submitted" && ["PENDING", "IN_PROGRESS"].contains($0["remote_status"] as String)
                })
        }
    }

    @Test func aTaskThatNeverFinishesIsGivenUpOnAndLeftResumable() async throws {
        try await Sandbox.withRunning(quickTasks { $0.generationTime = .seconds(1000) }) { url, _ in
            let (ledger, batchID) = try await submitted(2, url: url)
            // The wall clock says an hour has passed since submission.
            let client = MusicGPTClient(baseURL: url, key: APIKey("k")!)
            let tracker = Tracker(
                ledger: ledger, checker: client, settings: fastTracking(), clock: ContinuousClock(),
                wallClock: { Date().addingTimeInterval(3600) }, stop: StopSignal(), logger: quietLogger())
            let counters = try await tracker.run(batchID: batchID)
            await client.shutdown()
            #expect(counters.timedOut == 2 && counters.looks == 2)
            #expect(try await rows(ledger).allSatisfy { $0["state"] == "submitted" })
        }
    }

    @Test func recordingTheSameNewsTwiceChangesNothing() async throws {
        let ledger = try SQLiteLedger(path: folder.file("l.sqlite"))
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("b.csv", "prompt\nx\n")), batch: "b", skipInvalid: false)
        try await ledger.database.write { try $0.execute(sql: "UPDATE jobs SET state = 'submitted', task_id = 't'") }
        let done = RemoteStatus(
            taskID: "t", status: "completed", statusMessage: "ok", audioURL: "http://x/a.wav", conversionCost: 2)
        #expect(try await ledger.recordStatus(jobID: 1, done) == (.completed, true))
        let before = try await rows(ledger)[0]
        #expect(try await ledger.recordStatus(jobID: 1, done) == (.completed, false))
        // A late "running" cannot undo a finished job.
        #expect(try await ledger.recordStatus(jobID: 1, RemoteStatus(status: "IN_PROGRESS")) == (.completed, false))
        #expect(try await rows(ledger)[0] == before)
    }

    @Test func audioIsSavedUnderSafeDistinctNamesInsideTheFolder() async throws {
        let hostile = [
            "../../etc/passwd", "a/b", "a_b", "a\\b", "Door", "door", ".hidden", "..", "con",
            String(repeating: "long-", count: 60), "tab\there", "ok"
        ]
        try await Sandbox.withRunning(quickTasks { $0.generationFailureRate = 0 }) { url, _ in
            let (ledger, batchID) = try await submitted(ids: hostile, url: url)
            let sounds = folder.file("sounds")
            let counters = try await follow(
                ledger, batchID, url: url, settings: fastTracking(),
                download: DownloadSettings(directory: sounds))
            #expect(counters.downloaded == hostile.count)
            let files = try FileManager.default.contentsOfDirectory(atPath: sounds)
            #expect(files.count == hostile.count, "\(files)")
            #expect(Set(files.map { $0.lowercased() }).count == hostile.count, "names collide without regard to case")
            #expect(
                files.allSatisfy {
                    !$0.hasPrefix(".") && !$0.contains("/") && !$0.contains("\\") && $0.utf8.count <= 120
                })
            #expect(files.contains("ok.wav"))
            #expect(!FileManager.default.fileExists(atPath: folder.file("etc/passwd")))
            for row in try await rows(ledger) {
                let path = try #require(row["download_path"] as String?)
                #expect(path.hasPrefix(URL(fileURLWithPath: sounds).standardizedFileURL.path + "/"))
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                #expect(data.count == row["download_size"])
                #expect(data.prefix(4) == Data("RIFF".utf8) && data[8..<12] == Data("WAVE".utf8))
                let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
                #expect(mode == 0o644)
                // Measured once as it is saved: its length (the sandbox's 10 s) and its waveform.
                #expect(abs((row["audio_seconds"] as Double? ?? 0) - 10) < 0.01)
                let peaks = SoundSummary.peaks(fromText: row["peaks"] ?? "")
                #expect(peaks.count == 400 && peaks.contains { $0 > 10 } && peaks.contains { $0 < 250 })
            }
        }
    }

    @Test func presentFilesAreSkippedAndMissingOrChangedOnesFetchedAgain() async throws {
        try await Sandbox.withRunning(quickTasks { $0.generationFailureRate = 0 }) { url, _ in
            let (ledger, batchID) = try await submitted(3, url: url)
            let sounds = DownloadSettings(directory: folder.file("sounds"))
            #expect(
                try await follow(ledger, batchID, url: url, settings: fastTracking(), download: sounds).downloaded == 3)
            let again = try await follow(ledger, batchID, url: url, settings: fastTracking(), download: sounds)
            #expect(again.downloaded == 0 && again.downloadsSkipped == 3)

            try FileManager.default.removeItem(atPath: folder.file("sounds/j1.wav"))
            try Data("changed".utf8).write(to: URL(fileURLWithPath: folder.file("sounds/j2.wav")))
            let repaired = try await follow(ledger, batchID, url: url, settings: fastTracking(), download: sounds)
            #expect(repaired.downloaded == 2 && repaired.downloadsSkipped == 1)
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: folder.file("sounds/j2.wav"))).prefix(4) == Data("RIFF".utf8))
        }
    }

    @Test func anOversizedDownloadLeavesNothingBehind() async throws {
        try await Sandbox.withRunning(quickTasks { $0.generationFailureRate = 0 }) { url, _ in
            let (ledger, batchID) = try await submitted(2, url: url)
            var small = DownloadSettings(directory: folder.file("sounds"))
            small.maxBytes = 1000  // the sandbox's WAVs are 32 KB
            let counters = try await follow(ledger, batchID, url: url, settings: fastTracking(), download: small)
            #expect(counters.completed == 2 && counters.downloadsFailed == 2)
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.file("sounds")).isEmpty)
            #expect(try await rows(ledger).allSatisfy { $0["download_path"] as String? == nil })
        }
    }

    @Test func fileExtensionsComeFromTheURLOrTheContentType() {
        #expect(FileNames.fileExtension(url: "https://cdn.example/a/b.MP3?sig=1", contentType: "audio/wav") == "mp3")
        #expect(FileNames.fileExtension(url: "https://cdn.example/a/b", contentType: "audio/mpeg; charset=x") == "mp3")
        #expect(FileNames.fileExtension(url: "https://cdn.example/a/b.php", contentType: "audio/x-wav") == "wav")
        #expect(FileNames.fileExtension(url: "https://cdn.example/a", contentType: nil) == "audio")
        #expect(FileNames.slug("Rain, on a TIN roof!") == "rain-on-a-tin-roof")
    }

    /// What the service says of its tasks, looked up by the webhook receiver.
    struct KnownTasks: CallbackConfirmer {
        let tasks: [String: RemoteStatus]
        let lookups = Locked<[String]>([])

        func lookUp(taskID: String, batchID: Int64) async -> StatusOutcome {
            lookups.withLock { $0.append(taskID) }
            guard let task = tasks[taskID] else {
                return .retryable(status: 404, error: "HTTP 404: no such task", retryAfter: nil)
            }
            return .found(task)
        }
    }

    @Test func webhooksAreRecordedLikeLooksAndBadOnesChangeNothing() async throws {
        let ledger = try SQLiteLedger(path: folder.file("l.sqlite"))
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("b.csv", "id,prompt\na,x\nb,y\n")), batch: "b", skipInvalid: false)
        try await ledger.database.write {
            try $0.execute(sql: "UPDATE jobs SET state = 'submitted', task_id = 'task-' || row_key")
        }
        let service = KnownTasks(tasks: [
            "task-a": RemoteStatus(
                taskID: "task-a", status: "COMPLETED", statusMessage: "done", audioURL: "http://x/a.wav",
                conversionCost: 1.5),
            "task-b": RemoteStatus(taskID: "task-b", status: "IN_PROGRESS")
        ])
        let receiver = WebhookReceiver(ledger: ledger, confirmer: service, path: "/hook")
        let events = Locked<[WebhookReceiver.Event]>([])
        let afterFirst = try await receiver.serve(host: "127.0.0.1", port: 0, logger: quietLogger()) { event in
            events.withLock { $0.append(event) }
        } while: { url in
            func post(_ body: String) async throws -> Int { try await postJSON(body, to: url) }
            let completed =
                #"{"task_id":"task-a","conversion_id":"c","conversion_type":"SOUND_GENERATOR","status":"COMPLETED","status_msg":"done","audio_url":"http://x/a.wav","conversion_cost":1.5,"title":"t","createdAt":"x","updatedAt":"y"}"#
            #expect(try await post(completed) == 200)
            let afterFirst = try await rows(ledger)
            #expect(try await post(completed) == 200)  // the same payload again
            #expect(try await post(#"{"task_id":"task-zzz","status":"COMPLETED"}"#) == 404)
            #expect(try await post("{not json") == 400)
            #expect(try await post(#"{"status":"COMPLETED"}"#) == 400)
            #expect(
                try await post(
                    #"{"task_id":"task-b","status":"FAILED","pad":""# + String(repeating: "x", count: 70_000) + #""}"#)
                    == 413)
            return afterFirst
        }
        let recorded = try await rows(ledger)
        #expect(recorded == afterFirst, "nothing changed after the first callback")
        // A forged callback: the service says task-b is still running, so nothing it claims is written.
        let forged = #"{"task_id":"task-b","status":"COMPLETED","audio_url":"http://evil/x.wav","conversion_cost":999}"#
        let answer = try await receiver.serve(host: "127.0.0.1", port: 0, logger: quietLogger()) { event in
            events.withLock { $0.append(event) }
        } while: { url in
            try await postJSON(forged, to: url)
        }
        #expect(answer == 200)
        let afterForged = try await rows(ledger)
        #expect(afterForged[1]["state"] == "submitted" && afterForged[1]["remote_status"] == "IN_PROGRESS")
        #expect(recorded[0]["state"] == "completed")
        #expect(recorded[0]["conversion_cost"] == 1.5)
        #expect(recorded[0]["audio_url"] == "http://x/a.wav")
        #expect(recorded[1]["state"] == "submitted")
        #expect(afterForged[1]["audio_url"] as String? == nil && afterForged[1]["conversion_cost"] as Double? == nil)
        #expect(service.lookups.value == ["task-a", "task-a", "task-b"], "only known tasks are looked up")
        #expect(events.value.count == 7)
        #expect(events.value[1] == .recorded(jobID: 1, taskID: "task-a", state: .completed, changed: false))
    }

    @Test func theSandboxCallsBackAndTheReceiverRecordsIt() async throws {
        let ledger = try SQLiteLedger(path: folder.file("hooks.sqlite"))
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("h.csv", "id,prompt\na,one\nb,two\nc,three\n")), batch: "h", skipInvalid: false
        )
        let batchID = try await ledger.batchID(named: "h")
        try await Sandbox.withRunning(quickTasks { $0.generationFailureRate = 0 }) { url, _ in
            var bound = BatchSettings()
            bound.service = .api(baseURL: url)
            try await ledger.recordSettings(bound, ofBatch: batchID)
            try await BoundServiceLookups.with(ledger: ledger, key: { APIKey("k")! }) { lookups in
                let receiver = WebhookReceiver(ledger: ledger, confirmer: lookups)
                let events = Locked<[WebhookReceiver.Event]>([])
                try await receiver.serve(host: "127.0.0.1", port: 0, logger: quietLogger()) { event in
                    events.withLock { $0.append(event) }
                } while: { hook in
                    try await sendAll(batchID, of: ledger, to: url, webhookURL: hook)
                    // No tracking: the callbacks alone complete the jobs.
                    #expect(
                        try await eventually { try await rows(ledger).allSatisfy { $0["state"] == "completed" } },
                        "what the receiver heard: \(events.value)")
                }
            }
        }
        #expect(try await rows(ledger).allSatisfy { ($0["conversion_cost"] as Double?) != nil })
    }

    /// Every request makes its task and loses its answer (the connection dropped after the
    /// task was taken): each job is in doubt until its callback, which names the request,
    /// settles it with the task that request made.
    @Test func requestsLeftWithoutAnAnswerAreSettledByTheirOwnCallbacks() async throws {
        let ledger = try SQLiteLedger(path: folder.file("doubt.sqlite"))
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("d.csv", "id,prompt\na,one\nb,two\nc,three\nd,four\n")), batch: "d",
            skipInvalid: false)
        let batchID = try await ledger.batchID(named: "d")
        let service = quickTasks {
            $0.generationFailureRate = 0
            $0.failureRate = 1
            $0.failureKinds = [.resetAfter]
        }
        let tasks = try await Sandbox.withRunning(service) { url, sandbox in
            var bound = BatchSettings()
            bound.service = .api(baseURL: url)
            try await ledger.recordSettings(bound, ofBatch: batchID)
            try await BoundServiceLookups.with(ledger: ledger, key: { APIKey("k")! }) { lookups in
                let receiver = WebhookReceiver(ledger: ledger, confirmer: lookups)
                try await receiver.serve(host: "127.0.0.1", port: 0, logger: quietLogger()) { _ in
                } while: { hook in
                    // The receiver says which ledger it writes to: this one, and no other.
                    #expect(await WebhookReceiver.writesTo(identity: try await ledger.identity(), url: hook))
                    #expect(!(await WebhookReceiver.writesTo(identity: "another ledger", url: hook)))
                    try await sendAll(batchID, of: ledger, to: url, webhookURL: hook, callbackTokens: true)
                    #expect(try await eventually { try await rows(ledger).allSatisfy { $0["state"] == "completed" } })
                }
            }
            return await sandbox.acceptedTasks
        }
        let made = Dictionary(uniqueKeysWithValues: tasks.map { ($0.prompt, $0.taskID) })
        for row in try await rows(ledger) {
            #expect(made[row["prompt"]] == row["task_id"] as String?, "the task its own request made")
            #expect(row["settled_by_callback"] == 1 && row["request_in_doubt"] == 0)
        }
        #expect(tasks.count == 4, "nothing sent twice")
        // No request got an answer: the callbacks alone settled the jobs.
        let outcomes = try await ledger.database.read {
            try String.fetchAll($0, sql: "SELECT outcome FROM attempts WHERE kind = 'submit'")
        }
        #expect(outcomes == Array(repeating: "no_answer", count: 4))
        // Each callback URL carried its request's token, unlike any other.
        let tokens = Set(
            tasks.compactMap { $0.webhookURL.flatMap { CallbackToken.token(inQuery: URL(string: $0)?.query) } })
        #expect(tokens.count == 4)
    }

    /// The service cannot confirm a task when its callback comes (down, or busy): the
    /// receiver keeps what the callback named, the job is not sent again, and the next run
    /// confirms it with a status look and settles the job.
    @Test func aCallbackTheServiceCannotConfirmYetIsKeptAndConfirmedByTheNextRun() async throws {
        struct Down: CallbackConfirmer {
            func lookUp(taskID: String, batchID: Int64) async -> StatusOutcome {
                .retryable(status: 503, error: "HTTP 503: down for maintenance", retryAfter: nil)
            }
        }
        let ledger = try SQLiteLedger(path: folder.file("later.sqlite"))
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("l.csv", "id,prompt\na,one\nb,two\n")), batch: "l", skipInvalid: false)
        let batchID = try await ledger.batchID(named: "l")
        let service = quickTasks {
            $0.generationFailureRate = 0
            $0.failureRate = 1
            $0.failureKinds = [.resetAfter]
        }
        try await Sandbox.withRunning(service) { url, _ in
            let events = Locked<[WebhookReceiver.Event]>([])
            let receiver = WebhookReceiver(ledger: ledger, confirmer: Down())
            try await receiver.serve(host: "127.0.0.1", port: 0, logger: quietLogger()) { event in
                events.withLock { $0.append(event) }
            } while: { hook in
                try await sendAll(batchID, of: ledger, to: url, webhookURL: hook, callbackTokens: true)
                #expect(try await eventually { try await ledger.unconfirmedCallbacks(batchID: batchID).count == 2 })
            }
            #expect(events.value.allSatisfy { if case .noted = $0 { true } else { false } })
            // Not sent again while unconfirmed, whatever the doubt window.
            let held = try await ledger.requeueInDoubt(
                batchID: batchID, awaitingSince: Date(timeIntervalSinceNow: 60), now: Date())
            #expect(held == Requeued(resent: 0, waiting: 2, settledByCallback: 0))
            // The next run confirms them.
            let run = BatchRun(ledger: ledger, batch: "l", stop: StopSignal(), logger: quietLogger())
            try await MusicGPTClient.withClient(baseURL: url, key: APIKey("k")!, timeout: .seconds(5), connections: 2) {
                try await run.confirmCallbacks(batchID: batchID, client: $0)
            }
        }
        #expect(try await rows(ledger).allSatisfy { $0["state"] == "completed" && $0["settled_by_callback"] == 1 })
        #expect(try await ledger.unconfirmedCallbacks(batchID: batchID).isEmpty)
    }

    /// `--sandbox` settles its requests in doubt without being asked: soundbatch's own
    /// receiver hears their callbacks. The first run stops before they come; the next one
    /// listens where they were sent (the port kept with the batch), settles each in-doubt
    /// job with the task its request made, follows it and saves its sound. Every job is paid
    /// for once.
    @Test
    func aSandboxBatchSettlesItsRequestsInDoubtOnItsOwn() async throws {
        let ledger = try SQLiteLedger(path: folder.file("own.sqlite"))
        _ = try await ledger.ingest(
            CSVReader(path: folder.write("o.csv", "id,prompt\n" + (1...6).map { "s\($0),sound \($0)\n" }.joined())),
            batch: "o", skipInvalid: false)
        var run = BatchRun(ledger: ledger, batch: "o", stop: StopSignal(), logger: quietLogger())
        // Half the requests make their task and lose the answer (the connection drops).
        run.sandbox = BuiltInSandbox(
            configuration: quickTasks {
                $0.generationTime = .seconds(4)  // well after the first run ends, on a busy machine too
                $0.generationSpread = 0
                $0.eta = .unknown
                $0.generationFailureRate = 0
                $0.failureRate = 0.5
                $0.failureKinds = [.resetAfter]
            })
        var given = BatchSettings()
        given.service = .sandbox(port: 0, callbackPort: nil)
        given.rate = "50/s"
        _ = try await run.send(given, key: { .sandbox })
        let inDoubt = try await ledger.database.read {
            try Int.fetchOne($0, sql: "SELECT COUNT(DISTINCT job_id) FROM attempts WHERE outcome = 'no_answer'")
        }
        try #require(inDoubt.map { $0 > 0 && $0 < 6 } == true, "the seed gives some requests no answer")
        let service = try #require(try await ledger.settings(ofBatch: try await ledger.batchID(named: "o"))?.service)
        let callbackPort = try #require(service.callbackPort, "the receiver's port is kept with the batch")

        // Their callbacks come while the next run follows the batch.
        given = BatchSettings()
        given.wait = true
        given.download = folder.file("own-sounds")
        let second = try await run.send(given, key: { .sandbox })
        #expect(second.status.count(.completed) == 6, "\(second.status.states)")
        #expect(second.status.totals.settledByCallback == inDoubt && second.status.totals.inDoubt == 0)
        let saved = try FileManager.default.contentsOfDirectory(atPath: folder.file("own-sounds"))
        let dump = try await ledger.database.read {
            try Row.fetchAll(
                $0,
                sql:
                    "SELECT id, state, task_id, download_path, settled_by_callback, request_in_doubt, updated_at FROM jobs"
            )
            .map { "\($0)" }.joined(separator: "\n")
                + "\n"
                + (try Row.fetchAll($0, sql: "SELECT * FROM attempts ORDER BY id").map { "\($0)" }.joined(
                    separator: "\n"))
        }
        #expect(
            saved.filter { $0.hasSuffix(".wav") }.count == 6, "\(saved); \(String(describing: second.tracked))\n\(dump)"
        )
        let tasks = Sandbox.savedTasks(in: folder.file("own.sqlite") + ".sandbox.json")
        #expect(tasks.count == 6, "one task a job: none paid twice")
        #expect(
            try await ledger.settings(ofBatch: try await ledger.batchID(named: "o"))?.service?.callbackPort
                == callbackPort)
        // The row's own webhook column stays empty: the receiver's address is the run's, not the row's.
        #expect(try await rows(ledger).allSatisfy { ($0["webhook_url"] as String?) == nil })
    }
}
