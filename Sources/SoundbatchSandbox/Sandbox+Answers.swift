import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Serving
import SoundbatchAudio
import SoundbatchCore

/// What the sandbox answers: status looks, webhooks, audio, its own lists, and the
/// shapes of its answers.
extension Sandbox {
    // MARK: Status

    func status(_ request: Request) async -> Response {
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
    func conversion(of task: SandboxTask, origin: String) -> [String: Any] {
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
                conversion["audio_url"] = "\(origin)/audio/\(task.taskID).\(configuration.audioFormat.rawValue)"
                conversion["conversion_cost"] = task.conversionCost
            }
        }
        return conversion
    }

    // MARK: Webhooks

    /// Finished tasks with a webhook_url not yet called, with the body to send.
    func dueCallbacks(origin: String) -> [(id: String, url: String, body: Data)] {
        var due: [(String, String, Data)] = []
        for id in order where !notified.contains(id) {
            guard let task = tasks[id], let url = task.webhookURL, task.finished(by: Date()) else { continue }
            let body =
                (try? JSONSerialization.data(
                    withJSONObject: conversion(of: task, origin: origin), options: [.sortedKeys])) ?? Data()
            due.append((id, url, body))
        }
        return due
    }

    /// Marks a task's webhook called, as it is about to be; false if it was already.
    func calling(_ id: String) -> Bool { notified.insert(id).inserted }

    /// Calls each finished task's webhook once, as the service does; failures are logged, not retried.
    static func sendCallbacks(from sandbox: Sandbox, origin: String, logger: Logger) async {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await callLoop(sandbox: sandbox, http: http, origin: origin, logger: logger)
        } catch {
            // Cancelled: the sandbox is stopping.
        }
        try? await http.shutdown()
    }

    static func callLoop(sandbox: Sandbox, http: HTTPClient, origin: String, logger: Logger) async throws {
        while !Task.isCancelled {
            // Each marked called as it is sent, not all of them first: a sandbox stopped half-way
            // (a run ending) calls the rest when it runs again, never loses them.
            for callback in await sandbox.dueCallbacks(origin: origin) {
                try Task.checkCancellation()
                guard await sandbox.calling(callback.id) else { continue }
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

    /// The audio of a finished task, made outside the actor: encoding MP3 takes a while, and
    /// a service answers its status looks while it sends files.
    nonisolated func audio(named file: String) async throws -> Response {
        let taskID = (file as NSString).deletingPathExtension
        guard let task = await tasks[taskID], task.finished(by: Date()), !task.willFail else {
            return error(.notFound, "No such audio")
        }
        let sound = SandboxSound(of: task)
        switch configuration.audioFormat {
        case .wav:
            return Response(
                status: .ok, headers: [.contentType: "audio/wav"],
                body: ResponseBody(contentLength: WAV.size(sound)) { writer in
                    try await WAV.write(sound, to: &writer)
                })
        case .mp3:
            // On NIO's thread pool, not the cooperative one: LAME blocks its thread.
            guard let bytes = try? await NIOThreadPool.singleton.runIfActive({ try WAV.mp3(sound, taskID: taskID) })
            else {
                return error(.internalServerError, "The sandbox could not encode MP3")
            }
            return Response(
                status: .ok, headers: [.contentType: "audio/mpeg"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }

    func keyList() -> Response {
        let data = (try? JSONEncoder().encode(keyCounts.values.sorted { $0.key < $1.key })) ?? Data("[]".utf8)
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    func taskList() -> Response {
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
    func travelling(_ answer: () async throws -> Response) async throws -> Response {
        let network = configuration.networkJitter * random.double(in: 0...1)
        if network > .zero { try await Task.sleep(for: network) }
        let response = try await answer()
        let work = configuration.latency + configuration.latencyJitter * random.double(in: 0...1)
        if work > .zero { try await Task.sleep(for: work) }
        return response
    }

    @discardableResult
    func count(_ kind: String, _ response: Response? = nil) -> Response {
        answers[kind, default: 0] += 1
        return response ?? Response(status: .ok)
    }

    func rateLimited(retryIn seconds: Double) -> Response {
        var response = error(.tooManyRequests, "Rate limit exceeded")
        switch configuration.retryAfter {
        case .seconds: response.headers[.retryAfter] = String(Int(seconds.rounded(.up)))
        case .httpDate:
            response.headers[.retryAfter] = HTTPDate.format(Date().addingTimeInterval(seconds.rounded(.up) + 1))
        case .none: break
        }
        return response
    }

    nonisolated func error(_ status: HTTPResponse.Status, _ text: String) -> Response {
        json(status, ["success": false, "error": text])
    }

    nonisolated func json(_ status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    func htmlPage(_ status: HTTPResponse.Status) -> Response {
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
