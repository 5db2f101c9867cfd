import Foundation
import GRDB
import SoundbatchSandbox
import SoundbatchTesting
import Testing

/// `soundbatch review` in a real browser (Tests/Browser/review.py: Debian's chromium driven by
/// Playwright for Python), then the ledger read to see that what the page did is there.
/// It needs python3 with playwright and /usr/bin/chromium, which `.ci/run` installs; without
/// them it fails, saying what to install, and never skips.
@Suite(.serialized) struct ReviewBrowserTests {
    let folder = try! TemporaryFolder()

    static let sheet = """
        id,prompt,scene
        door-creak,Old wooden door creaking open slowly in an empty hallway,haunted house
        footsteps-gravel,Footsteps on wet gravel at a steady walking pace,forest path
        sword-unsheathe,"Metal sword drawn from a leather scabbard, sharp ring at the end",castle armory
        rain-window,Heavy rain against a window with distant rolling thunder,cabin interior
        ui-confirm,Short bright UI confirmation chime,menu

        """

    @Test func aBatchReviewedByKeyboardAndMouseWithARerollInARealBrowser() async throws {
        guard let (script, screenshots) = try await browserScript("review.py") else { return }
        let csv = try folder.write("sheet.csv", Self.sheet)
        let sandbox = SandboxConfiguration.with {
            $0.submitsPerMinute = nil
            $0.looksPerMinute = nil
            $0.generationTime = .milliseconds(300)
            $0.eta = .true
            $0.generationFailureRate = 0
        }
        try await Sandbox.withRunning(sandbox) { url, _ in
            let environment = ["MUSICGPT_API_KEY": "k"]
            let batch = try Child(
                [
                    "run", csv, "--batch", "sfx", "--base-url", url, "--wait", "--download", "sounds", "--ledger",
                    "ledger.sqlite"
                ],
                in: folder, environment: environment, name: "run")
            #expect(try await batch.exitStatus() == 0, "\(batch.stderr)")

            try await browse(script, screenshots, environment: environment)
        }

        // What the page did is in the ledger.
        let ledger = try DatabaseQueue(path: folder.file("ledger.sqlite"))
        let verdicts = try ledger.read { db in
            try Row.fetchAll(db, sql: "SELECT row_key, take, verdict, take_prompt, state FROM jobs ORDER BY id")
        }
        #expect(
            verdicts.map { $0["row_key"] as String } == [
                "door-creak", "footsteps-gravel", "sword-unsheathe", "rain-window", "ui-confirm"
            ])
        #expect(verdicts.map { $0["verdict"] as String? } == [nil, "rejected", nil, "kept", "rejected"])
        #expect(verdicts[0]["take"] == 2 && verdicts[0]["state"] == "completed")
        #expect(verdicts[0]["take_prompt"] as String? == "Old wooden door creaking open, more reverb")
        let earlier = try ledger.read { db in try Row.fetchAll(db, sql: "SELECT take, verdict, prompt FROM takes")
        }
        #expect(
            earlier.count == 1 && earlier[0]["take"] == 1 && earlier[0]["verdict"] == "kept",
            "the earlier take keeps its verdict")
        for width in [390, 1280] {
            #expect(FileManager.default.fileExists(atPath: "\(screenshots)/review-\(width).png"))
        }
    }

    /// The HTML spend report (Tests/Browser/report.py) at 1280 and 390 px: an axe audit with
    /// no serious or critical violation, the page never wider than the screen, each table's
    /// box reached by the keyboard; over a batch some of whose sounds failed.
    @Test func theSpendReportReadsOnAPhoneAndPassesAnAccessibilityAudit() async throws {
        guard let (script, screenshots) = try await browserScript("report.py") else { return }
        let csv = try folder.write("sheet.csv", Self.sheet)
        let sandbox = SandboxConfiguration.quick {
            $0.failingPrompt = "gravel"  // answered 500, and not tried again: failed
        }
        try await Sandbox.withRunning(sandbox) { url, _ in
            let batch = try Child(
                [
                    "run", csv, "--batch", "sfx", "--base-url", url, "--wait", "--max-attempts", "1", "--ledger",
                    "ledger.sqlite"
                ],
                in: folder, environment: ["MUSICGPT_API_KEY": "k"], name: "run")
            _ = try await batch.exitStatus()
        }
        let report = try await soundbatch(
            ["report", "--format", "html", "--output", "report.html", "--ledger", "ledger.sqlite"], in: folder.path)
        #expect(report.status == 0, "\(report.stderr)")
        #expect(
            try String(contentsOfFile: folder.file("report.html"), encoding: .utf8).contains("Failed jobs"),
            "some failed")
        let browser = try await run(["python3", script, folder.file("report.html"), screenshots], within: .seconds(120))
        #expect(browser.status == 0, "\(browser.output)")
    }

    /// The script `name` of Tests/Browser, and where its screenshots go (SOUNDBATCH_SCREENSHOTS
    /// keeps them to look at), once Playwright and chromium are found; else an issue that
    /// says what to install, and nil.
    func browserScript(_ name: String) async throws -> (script: String, screenshots: String)? {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Browser/\(name)").path
        let ready = try await run(["python3", "-c", "import playwright, axe_playwright_python"], within: .seconds(30))
        #expect(
            ready.status == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"),
            "the browser test needs Debian's chromium, and Playwright and axe for Python: apt-get install chromium; pip install playwright axe-playwright-python (\(ready.output))"
        )
        guard ready.status == 0 else { return nil }
        return (script, ProcessInfo.processInfo.environment["SOUNDBATCH_SCREENSHOTS"] ?? folder.path)
    }

    /// Serves the review page of batch sfx, runs a browser script against its address (and
    /// `arguments`), then stops the page with a Ctrl-C, as a person would.
    func browse(
        _ script: String, _ screenshots: String, _ arguments: String..., environment: [String: String]
    )
        async throws
    {
        let review = try Child(
            ["review", "--batch", "sfx", "--listen", "127.0.0.1:0", "--ledger", "ledger.sqlite"], in: folder,
            environment: environment, name: "review")
        defer { review.signal(SIGINT) }
        #expect(try await eventually { review.stdout.contains("?token=") }, "\(review.stderr)")
        let line = try #require(
            review.stdout.split(separator: "\n").first { $0.hasPrefix("Review \"sfx\" at http://127.0.0.1:") })
        let address = String(line.split(separator: " ").last!)
        let browser = try await run(["python3", script, address, screenshots] + arguments, within: .seconds(240))
        #expect(browser.status == 0, "\(browser.output)\n\(review.stderr)")
        review.signal(SIGINT)
        #expect(try await review.exitStatus() == 0, "\(review.stderr)")
    }

    /// Runs a program to its end, its output and errors together.
    func run(_ arguments: [String], within limit: Duration) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = folder.file("program-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = ContinuousClock.now + limit
        while process.isRunning {
            if ContinuousClock.now > deadline { process.terminate() }
            try await Task.sleep(for: .milliseconds(50))
        }
        return (process.terminationStatus, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    /// What the checks found, in words on each take, a filter for the flagged rows and F to
    /// the next flagged take (Tests/Browser/checks.py), over a batch whose sounds the sandbox
    /// makes wrong on purpose, what each take should say told by the sandbox's defects.
    @Test func theReviewPageSaysWhatEachCheckFoundInWords() async throws {
        guard let (script, screenshots) = try await browserScript("checks.py") else { return }
        let csv = try folder.write(
            "sheet.csv", csvText([["id", "prompt", "audio_length"]] + (1...6).map { ["r\($0)", "Sound \($0)", "3"] }))
        let sandbox = SandboxConfiguration.quick {
            $0.audioFormat = .mp3
            $0.defectShare = 0.6
        }
        try await Sandbox.withRunning(sandbox) { url, sandbox in
            let environment = ["MUSICGPT_API_KEY": "k"]
            let batch = try Child(
                [
                    "run", csv, "--batch", "sfx", "--takes", "2", "--base-url", url, "--wait", "--download", "sounds",
                    "--ledger", "ledger.sqlite"
                ],
                in: folder, environment: environment, name: "run")
            #expect(try await batch.exitStatus() == 0, "\(batch.stderr)")

            // What each take should say, as patterns, from the defect the sandbox gave its task:
            // one row of the page a row of the sheet, its two variations' takes side by side.
            let ledger = try DatabaseQueue(path: folder.file("ledger.sqlite"))
            let jobs = try ledger.read { db in
                try Row.fetchAll(db, sql: "SELECT row_key, take, task_id FROM jobs ORDER BY source_line, variation")
            }
            let tasks = Dictionary(uniqueKeysWithValues: await sandbox.acceptedTasks.map { ($0.taskID, $0) })
            let takeOfTask = Dictionary(uniqueKeysWithValues: jobs.map { ($0["task_id"] as String, $0["take"] as Int) })
            var words = [[String]](repeating: [], count: jobs.count)
            for (index, job) in jobs.enumerated() {
                let task = tasks[job["task_id"] as String]
                switch task?.defect {
                case .silent?: words[index] = ["silent"]
                case .clipped?: words[index] = [#"clipped at \+\d+\.\d dBTP"#]
                case .short?: words[index] = [#"0\.6 s of 3 s asked"#]
                case .dcOffset?: words[index] = [#"DC offset at -\d+\.\d dBFS"#]
                case .duplicate?:
                    // The later take of the two alike is the duplicate of the earlier.
                    let takes = [job["take"] as Int, takeOfTask[task?.soundOf ?? ""] ?? 0]
                    let later = jobs.firstIndex {
                        $0["take"] as Int == takes.max()! && $0["row_key"] as String == job["row_key"] as String
                    }!
                    words[later] = ["same as take \(takes.min()!)"]
                case nil: break
                }
            }
            let wrong = words.filter { !$0.isEmpty }.count
            #expect(wrong > 0 && wrong < jobs.count, "the sandbox made \(wrong) of \(jobs.count) sounds wrong")
            var rows: [(name: String, takes: [String: [String]])] = []
            for (job, said) in zip(jobs, words) {
                let name = job["row_key"] as String
                if rows.last?.name != name { rows.append((name, [:])) }
                rows[rows.count - 1].takes[String(job["take"] as Int)] = said
            }
            // A row is found by the checks filter when one of its takes is flagged, or clean.
            let expected = try JSONSerialization.data(withJSONObject: [
                "rows": rows.map { ["name": $0.name, "takes": $0.takes] },
                "flagged": rows.filter { $0.takes.values.contains { !$0.isEmpty } }.count,
                "clean": rows.filter { $0.takes.values.contains { $0.isEmpty } }.count
            ])
            let expectedFile = try folder.write("expected.json", [UInt8](expected))

            try await browse(script, screenshots, expectedFile, environment: environment)
        }
        #expect(FileManager.default.fileExists(atPath: "\(screenshots)/review-checks-1280.png"))
    }
}
