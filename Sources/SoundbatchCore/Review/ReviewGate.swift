import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// Who may use a review server. It can spend credits (a re-roll) and change the ledger, so,
/// as Jupyter does, it holds a secret token made at start and carried in the address it
/// prints; the page's first load trades it for a cookie only this server's pages send back.
///
/// - A request whose Host is a name other than `localhost` is refused: a page of another
///   site whose name was pointed at 127.0.0.1 (DNS rebinding) could otherwise read it.
/// - Reading (the page, its rows, audio) needs the token, from the cookie or the address.
/// - A change (a verdict, a re-roll) needs more: the cookie, the token again in a header
///   the page sets (which another site's page cannot set without the server's consent,
///   never given), JSON, and an Origin that is this server.
public struct ReviewGate: Sendable {
    public let token: String
    /// Cookies are kept per host, not per port: each server names its own after its token.
    let cookieName: String
    static let tokenHeader = HTTPField.Name("X-Review-Token")!

    public init(token: String = ReviewGate.newToken()) {
        self.token = token
        let digest = SHA256.hash(data: Data(token.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
        cookieName = "soundbatch_review_\(digest)"
    }

    /// 32 random bytes, as hex.
    public static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Why a request is refused, or nil when it may go on.
    enum Refusal: String {
        case host = "this review answers only at its own address (an IP address or localhost)"
        case token = "this review needs the address `soundbatch review` printed, with its token"
        case foreign = "changes are taken only from the review page itself"
    }

    /// A Host header naming this machine by address or as localhost; a name could be anyone's.
    func hostAllowed(_ host: String?) -> Bool {
        guard let host, !host.isEmpty else { return false }
        var name = Substring(host)
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { return false }
            return isIPv6(String(name[name.index(after: name.startIndex)..<close]))
        }
        if let colon = name.lastIndex(of: ":") { name = name[..<colon] }
        let lowered = name.lowercased()
        return lowered == "localhost" || isIPv4(lowered)
    }

    /// The token the request carries, from its cookie, header or query.
    func carries(_ request: Request) -> Bool {
        let candidates = [
            request.cookies[cookieName]?.value, request.headers[Self.tokenHeader],
            request.uri.queryParameters["token"].map(String.init)
        ]
        return candidates.contains { $0.map(matches) == true }
    }

    func refusalToRead(_ request: Request) -> Refusal? {
        guard hostAllowed(request.head.authority) else { return .host }
        return carries(request) ? nil : .token
    }

    func refusalToChange(_ request: Request) -> Refusal? {
        guard hostAllowed(request.head.authority) else { return .host }
        guard let cookie = request.cookies[cookieName]?.value, matches(cookie),
            let header = request.headers[Self.tokenHeader], matches(header)
        else { return .token }
        guard let origin = request.headers[.origin], let host = request.head.authority, origin == "http://" + host,
            request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true
        else { return .foreign }
        return nil
    }

    /// The token, compared in constant time.
    func matches(_ candidate: String) -> Bool {
        let given = Array(candidate.utf8)
        let wanted = Array(token.utf8)
        guard given.count == wanted.count else { return false }
        return zip(given, wanted).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// The cookie the page's first load sets: sent back by this site's own pages only.
    var cookie: Cookie {
        Cookie(name: cookieName, value: token, path: "/", httpOnly: true, sameSite: .strict)
    }
}

private func isIPv4(_ text: String) -> Bool {
    var address = in_addr()
    return inet_pton(AF_INET, text, &address) == 1
}

private func isIPv6(_ text: String) -> Bool {
    var address = in6_addr()
    return inet_pton(AF_INET6, text, &address) == 1
}
