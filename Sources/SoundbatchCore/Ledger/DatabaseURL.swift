import Foundation

/// Where a PostgreSQL ledger is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, or
/// `postgresql://...`, with libpq's TLS parameters (`sslmode`, `sslrootcert`, `sslcert`,
/// `sslkey`). The password may also come from `$PGPASSWORD` or `~/.pgpass`, as for
/// PostgreSQL's own tools. It never appears in messages: `description` masks it.
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var tls = TLS()

    /// TLS as libpq's parameters ask for it.
    public struct TLS: Sendable, Equatable {
        /// `sslmode`, with libpq's meanings: `disable` never, `allow` only when the server
        /// wants it, `prefer` (the default) when the server offers it, `require` always
        /// (checking the server's certificate against a CA only when one is given, as libpq
        /// does), `verify-ca` always with the certificate signed by a trusted CA, and
        /// `verify-full` that and naming the host connected to.
        public var mode = Mode.prefer
        /// `sslrootcert`: a file of the CA certificates to trust, or `system` for the
        /// system's own; by default `~/.postgresql/root.crt` when it exists.
        public var rootCertificate: String?
        /// `sslcert` and `sslkey`: this side's certificate and key, for a server that asks
        /// for one; by default `~/.postgresql/postgresql.crt` and `.key` when they exist.
        public var certificate: String?
        public var key: String?

        public enum Mode: String, Sendable, CaseIterable {
            case disable, allow, prefer, require
            case verifyCA = "verify-ca"
            case verifyFull = "verify-full"
        }

        public init() {}
    }

    /// Whether `location` names a PostgreSQL database rather than a file.
    public static func isDatabaseURL(_ location: String) -> Bool {
        let lowered = location.lowercased()
        return lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://")
    }

    /// Whether `location` looks like a URL of some other kind (`postgre://`, `pg://`,
    /// `http://`): never a file name to make.
    public static func isOtherURL(_ location: String) -> Bool {
        guard let scheme = location.range(of: "://") else { return false }
        let name = location[..<scheme.lowerBound]
        return !name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || "+-.".contains($0) }
            && !isDatabaseURL(location)
    }

    /// Reads a database URL; `environment` and `passFile` supply a password it does not hold.
    public init(
        _ text: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        passFile: String? = nil
    ) throws(LedgerError) {
        let masked = Self.masking(text)
        func refuse(_ reason: String) -> LedgerError { .cannotOpen(path: masked, reason: reason) }
        guard Self.isDatabaseURL(text), let parts = URLComponents(string: text) else {
            throw refuse(
                text.contains("#") || text.contains(" ")
                    ? "not a database URL: a #, space or other such character in the password must be "
                        + "percent-encoded (# as %23, space as %20)"
                    : "not a database URL; write postgres://USER@HOST:PORT/DATABASE")
        }
        if parts.fragment != nil {
            // URL syntax ends the URL at a #: the rest of a password (and the database) would be lost.
            throw refuse("the URL holds a #: in a password, write it percent-encoded, as %23")
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
        let query = parts.queryItems ?? []
        func parameter(_ name: String) -> String? { query.first { $0.name == name }?.value }
        if let sslMode = parameter("sslmode") {
            guard let mode = TLS.Mode(rawValue: sslMode) else {
                throw refuse(
                    "sslmode=\(sslMode) is not one of \(TLS.Mode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            tls.mode = mode
        }
        tls.rootCertificate = parameter("sslrootcert")
        tls.certificate = parameter("sslcert")
        tls.key = parameter("sslkey")
        password =
            parts.password.flatMap { $0.removingPercentEncoding } ?? environment["PGPASSWORD"]
            ?? Self.passwordFromFile(
                passFile ?? environment["PGPASSFILE"] ?? (NSHomeDirectory() + "/.pgpass"), host: host, port: port,
                database: self.database, user: user)
    }

    /// The URL as given, its password replaced by ***.
    public var description: String {
        "postgres://\(user)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)"
            + (tls.mode == .prefer ? "" : "?sslmode=\(tls.mode.rawValue)")
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
