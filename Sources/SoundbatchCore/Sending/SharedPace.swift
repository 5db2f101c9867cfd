import Crypto
import Foundation

/// Where runners sharing an API key keep its pace, so that together they hold the key's
/// rate: the next moment a request with the key may leave, advanced by each reservation
/// (the cell rate algorithm of `RateLimiter`, made shared). A server database keeps one
/// per key and kind of request; a ledger one runner uses alone has none.
public protocol SharedPace: Sendable {
    /// Reserves the key's next free slot, `interval` after the one reserved before it, and
    /// returns how long from now until it comes (zero when it is free now).
    func reserve(interval: Duration) async throws -> Duration

    /// Holds every runner using the key back for `duration` from now (a 429's pause).
    func pause(for duration: Duration) async throws
}

/// The requests a key's limits count apart (`../shared/api/README.md`: 60 submissions and
/// 200 status looks a minute, per key).
public enum PacedRequests: String, Sendable {
    case submissions, looks
}

extension APIKey {
    /// How runners recognise a key they share, in the ledger and nowhere else: a keyed hash
    /// of it (HMAC-SHA256), from which the key cannot be read back.
    public var fingerprint: String {
        let code = HMAC<SHA256>.authenticationCode(
            for: Data(value.utf8), using: SymmetricKey(data: Data("soundbatch key fingerprint".utf8)))
        return code.prefix(16).map { String(format: "%02x", $0) }.joined()
    }
}
