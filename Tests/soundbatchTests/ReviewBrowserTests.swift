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
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Browser/review.py").path
        let ready = try await run(["python3", "-c", "import playwright"], within: .seconds(30))
        #expect(
            ready.status == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"),
            "the browser test needs Debian's chromium and Playwright for Python: apt-get install chromium; pip install playwright (\(ready.output))"
        )
        guard ready.status == 0 else { return }

        // SOUNDBATCH_SCREENSHOTS keeps the page's screenshots at 390 and 1280 px to look at.
        let screenshots = ProcessInfo.processInfo.environment["SOUNDBATCH_SCREENSHOTS"] ?? folder.path
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

            let review = try Child(
                ["review", "--batch", "sfx", "--listen", "127.0.0.1:0", "--ledger", "ledger.sqlite"], in: folder,
                environment: environment, name: "review")
            defer { review.signal(SIGINT) }
            #expect(try await eventually { review.stdout.contains("?token=") }, "\(review.stderr)")
            let line = try #require(
                review.stdout.split(separator: "\n").first { $0.hasPrefix("Review \"sfx\" at http://127.0.0.1:") })
            let address = String(line.split(separator: " ").last!)

            let browser = try await run(["python3", script, address, screenshots], within: .seconds(240))
            #expect(browser.status == 0, "\(browser.output)\n\(review.stderr)")

            review.signal(SIGINT)
            #expect(try await review.exitStatus() == 0, "\(review.stderr)")
        }

        // What the page did is in the ledger.
        let ledger = try DatabaseQueue(path: folder.file("ledger.sqlite"))
        let verdicts = try await ledger.read { db in
            try Row.fetchAll(db, sql: "SELECT row_key, take, verdict, take_prompt, state FROM jobs ORDER BY id")
        }
        #expect(
            verdicts.map { $0["row_key"] as String } == [
                "door-creak", "footsteps-gravel", "sword-unsheathe", "rain-window", "ui-confirm"
            ])
        #expect(verdicts.map { $0["verdict"] as String? } == [nil, "rejected", nil, "kept", "rejected"])
        #expect(verdicts[0]["take"] == 2 && verdicts[0]["state"] == "completed")
        #expect(verdicts[0]["take_prompt"] as String? == "Old wooden door creaking open, more reverb")
        let earlier = try await ledger.read { db in try Row.fetchAll(db, sql: "SELECT take, verdict, prompt FROM takes")
        }
        #expect(
            earlier.count == 1 && earlier[0]["take"] == 1 && earlier[0]["verdict"] == "kept",
            "the earlier take keeps its verdict")
        for width in [390, 1280] {
            #expect(FileManager.default.fileExists(atPath: "\(screenshots)/review-\(width).png"))
        }
    }

    /// Runs a program to its end, its output and errors together.
    func run(_ arguments: [String], within limit: Duration) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = folder.file("program-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: output, contents: nil)
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
}
