import Foundation

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
                struct Object: Decodable {
                    var message: String?
                    var detail: String?
                }
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
        return RemoteStatus(
            taskID: taskID, status: status, statusMessage: statusMessage, audioURL: audioURL,
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
