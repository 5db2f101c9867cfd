import Foundation

/// Where a PostgreSQL ledger is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, or
/// `postgresql://...`, with `?sslmode=require` for TLS. The password may also come from
/// `$PGPASSWORD` or `~/.pgpass`, as for PostgreSQL's own tools. It never appears in
/// messages: `description` masks it.
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var tls: TLSMode

    /// What `sslmode` asks, as PostgreSQL's own tools read it.
    public enum TLSMode: Sendable, Equatable {
        /// disable, allow, prefer (the default): no TLS.
        case none
        /// require: encrypted, the server's certificate not checked.
        case encrypted
        /// verify-ca, verify-full: encrypted, and the certificate checked.
        case verified
    }

    /// Whether `location` names a PostgreSQL database rather than a file.
    public static func isDatabaseURL(_ location: String) -> Bool {
        let lowered = location.lowercased()
        return lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://")
    }

    /// Reads a database URL; `environment` and `passFile` supply a password it does not hold.
    public init(
        _ text: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        passFile: String? = nil
    ) throws(LedgerError) {
        let masked = Self.masking(text)
        func refuse(_ reason: String) -> LedgerError { .cannotOpen(path: masked, reason: reason) }
        guard Self.isDatabaseURL(text), let parts = URLComponents(string: text) else {
            throw refuse("not a database URL; write postgres://USER@HOST:PORT/DATABASE")
        }
        guard let host = parts.host, !host.isEmpty else { throw refuse("the URL names no host") }
        let database = String(parts.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw refuse("the URL names no database; end it with /DATABASE, such as /soundbatch")
        }
        self.host = host
        port = parts.port ?? 5432
        user = parts.user.flatMap { $0.removingPercentEncoding } ?? environment["USER"] ?? "postgres"
        self.database = database.removingPercentEncoding ?? database
        let sslMode = parts.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        guard ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(sslMode) else {
            throw refuse("sslmode=\(sslMode) is not one of disable, prefer, require, verify-ca, verify-full")
        }
        tls = sslMode == "require" ? .encrypted : sslMode.hasPrefix("verify") ? .verified : .none
        password =
            parts.password.flatMap { $0.removingPercentEncoding } ?? environment["PGPASSWORD"]
            ?? Self.passwordFromFile(
                passFile ?? environment["PGPASSFILE"] ?? (NSHomeDirectory() + "/.pgpass"), host: host, port: port,
                database: self.database, user: user)
    }

    /// The URL as given, its password replaced by ***.
    public var description: String {
        "postgres://\(user)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)"
            + (tls == .none ? "" : tls == .encrypted ? "?sslmode=require" : "?sslmode=verify-full")
    }

    /// A URL's text with any password masked, for messages about a URL that could not be read.
    public static func masking(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let scheme = text.range(of: "://"), scheme.upperBound < at,
            let colon = text[scheme.upperBound..<at].firstIndex(of: ":")
        else { return text }
        return String(text[..<text.index(after: colon)]) + "***" + String(text[at...])
    }

    /// The password `~/.pgpass` holds for this connection: lines of
    /// host:port:database:user:password, where * matches anything and \ escapes : and \.
    static func passwordFromFile(_ path: String, host: String, port: Int, database: String, user: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            var fields: [String] = [""]
            var escaped = false
            for character in line {
                if escaped {
                    fields[fields.count - 1].append(character)
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == ":" && fields.count < 5 {
                    fields.append("")
                } else {
                    fields[fields.count - 1].append(character)
                }
            }
            guard fields.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            if zip(fields, wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }
}
