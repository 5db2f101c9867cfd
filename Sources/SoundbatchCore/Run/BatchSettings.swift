import Foundation

/// How a batch is run, kept in the ledger with the batch: a later `resume` or `track`
/// carries on exactly as the batch was run, unless told otherwise. Every field is optional:
/// nil means "not said", and the batch's remembered value, else the default, holds.
/// The API key is never part of it.
public struct BatchSettings: Codable, Sendable, Equatable {
    /// Where the batch's requests go. Once the service holds tasks of the batch, this is
    /// where they can be tracked, and the only place they may be resent to.
    public var service: ServiceAddress?
    /// Submissions allowed, as `Rate` writes it (`60/min`).
    public var rate: String?
    public var burst: Int?
    public var concurrency: Int?
    public var maxAttempts: Int?
    public var maxCredits: Double?
    /// Seconds to wait for an answer.
    public var timeout: Double?
    public var webhookURL: String?
    /// Seconds the service may be out before the run stops.
    public var outageLimit: Double?
    /// Follow the tasks to their end after sending.
    public var wait: Bool?
    /// Status looks allowed, as `Rate` writes it.
    public var lookRate: String?
    /// Seconds after submission to give up on a task still running.
    public var timeoutAfter: Double?
    /// The folder the audio is saved in, as an absolute path.
    public var download: String?
    public var maxDownloadSize: Int?
    public var downloadConcurrency: Int?
    /// What each sound is held to as it is saved; `checked` false: saved unmeasured.
    public var checks: CheckChoices?
    public var checked: Bool?
    /// How many times a run sends a take a check found wrong again, at most (0: never).
    public var rerollFlagged: Int?

    public init() {}

    /// What a run uses when nothing was said: the documented limits, as the settings of
    /// each stage have them.
    public static let defaults: BatchSettings = {
        let send = SendSettings()
        let track = TrackSettings()
        let download = DownloadSettings(directory: ".")
        var settings = BatchSettings()
        settings.rate = send.dispatch.rate.description
        settings.burst = send.dispatch.burst
        settings.concurrency = send.dispatch.concurrency
        settings.maxAttempts = send.dispatch.maxAttempts
        settings.timeout = send.requestTimeout.seconds
        settings.outageLimit = send.dispatch.outageLimit.seconds
        settings.wait = false
        settings.lookRate = track.lookRate.description
        settings.timeoutAfter = track.giveUpAfter.seconds
        settings.maxDownloadSize = download.maxBytes
        settings.downloadConcurrency = download.concurrency
        return settings
    }()

    /// These settings, with every one that `newer` says put over them.
    public func overridden(by newer: BatchSettings) -> BatchSettings {
        var merged = self
        merged.service = newer.service ?? service
        merged.rate = newer.rate ?? rate
        merged.burst = newer.burst ?? burst
        merged.concurrency = newer.concurrency ?? concurrency
        merged.maxAttempts = newer.maxAttempts ?? maxAttempts
        merged.maxCredits = newer.maxCredits ?? maxCredits
        merged.timeout = newer.timeout ?? timeout
        merged.webhookURL = newer.webhookURL ?? webhookURL
        merged.outageLimit = newer.outageLimit ?? outageLimit
        merged.wait = newer.wait ?? wait
        merged.lookRate = newer.lookRate ?? lookRate
        merged.timeoutAfter = newer.timeoutAfter ?? timeoutAfter
        merged.download = newer.download ?? download
        merged.maxDownloadSize = newer.maxDownloadSize ?? maxDownloadSize
        merged.downloadConcurrency = newer.downloadConcurrency ?? downloadConcurrency
        merged.checks = newer.checks.map { (checks ?? CheckChoices()).overridden(by: $0) } ?? checks
        merged.checked = newer.checked ?? checked
        merged.rerollFlagged = newer.rerollFlagged ?? rerollFlagged
        return merged
    }

    /// How sending goes with these settings (over the defaults).
    public var sendSettings: SendSettings {
        let all = Self.defaults.overridden(by: self)
        var settings = SendSettings()
        settings.dispatch.rate = all.rate.flatMap(Rate.init) ?? settings.dispatch.rate
        settings.dispatch.burst = all.burst ?? settings.dispatch.burst
        settings.dispatch.concurrency = all.concurrency ?? settings.dispatch.concurrency
        settings.dispatch.maxAttempts = all.maxAttempts ?? settings.dispatch.maxAttempts
        settings.dispatch.maxCredits = all.maxCredits
        settings.dispatch.webhookURL = all.webhookURL
        settings.requestTimeout = all.timeout.map(Self.duration) ?? settings.requestTimeout
        settings.dispatch.outageLimit = all.outageLimit.map(Self.duration) ?? settings.dispatch.outageLimit
        if all.wait == true { settings.follow = followSettings(once: false) }
        return settings
    }

    /// Seconds, as settings keep them, as a duration.
    private static func duration(_ seconds: Double) -> Duration { .milliseconds(Int64(seconds * 1000)) }

    /// How following the tasks goes with these settings (over the defaults).
    public func followSettings(once: Bool) -> FollowSettings {
        let all = Self.defaults.overridden(by: self)
        var settings = FollowSettings()
        settings.tracking.lookRate = all.lookRate.flatMap(Rate.init) ?? settings.tracking.lookRate
        settings.tracking.giveUpAfter = all.timeoutAfter.map(Self.duration) ?? settings.tracking.giveUpAfter
        settings.tracking.once = once
        settings.download = all.download.map { folder in
            var download = DownloadSettings(directory: folder)
            download.maxBytes = all.maxDownloadSize ?? download.maxBytes
            download.concurrency = all.downloadConcurrency ?? download.concurrency
            download.checks = all.checked == false ? nil : (all.checks ?? CheckChoices()).settings
            return download
        }
        return settings
    }
}

/// Where a batch's requests go.
public enum ServiceAddress: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The MusicGPT API (or anything that answers like it) at a base URL.
    case api(baseURL: String)
    /// The sandbox soundbatch starts itself, on loopback at this port, its tasks kept
    /// beside the ledger so that a later command finds them; and the port of the receiver
    /// soundbatch starts beside it for the callbacks of the batch's requests, kept so that
    /// the callbacks of tasks made before a stop still find it (`OwnCallbacks`).
    case sandbox(port: Int, callbackPort: Int?)

    public var description: String {
        switch self {
        case let .api(baseURL): baseURL
        case let .sandbox(port, _): "the built-in sandbox (127.0.0.1:\(port))"
        }
    }

    /// Where the receiver soundbatch starts beside the built-in sandbox last listened.
    var callbackPort: Int? {
        if case let .sandbox(_, port) = self { port } else { nil }
    }
}

extension BatchSettings {
    /// As the ledger keeps it: JSON, keys sorted.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Settings a ledger holds; ones it cannot read (written by hand, say) count as none.
    public init?(json: String) {
        guard let settings = try? JSONDecoder().decode(BatchSettings.self, from: Data(json.utf8)) else { return nil }
        self = settings
        // The look rate's name before 0.5.
        struct Before: Decodable { var pollRate: String? }
        lookRate = lookRate ?? (try? JSONDecoder().decode(Before.self, from: Data(json.utf8)))?.pollRate
    }
}
