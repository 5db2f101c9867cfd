import Foundation
import Testing

@testable import SoundbatchCore

/// A private cluster that takes only TLS, with a CA and certificates `scripts/with-postgres.sh`
/// makes with openssl (`SOUNDBATCH_PG_TLS`): its certificate names localhost only, and the
/// user certuser must show one of its own. Started once for the test process.
actor TLSPostgres {
    static let shared = TLSPostgres()
    nonisolated let certificates = try! TemporaryFolder()
    private var server: (url: String, process: Process, input: Pipe)?

    /// The cluster's URL, without TLS parameters.
    func url() throws -> String {
        if let server { return server.url }
        let (line, process, input) = try servePostgres(environment: ["SOUNDBATCH_PG_TLS": certificates.path])
        server = (line, process, input)
        return line
    }
}

/// TLS to a team's database as libpq's users expect it, against a server that takes nothing else.
@Suite struct TLSLedgerTests {
    let folder = try! TemporaryFolder()

    /// `status` on the TLS cluster with these URL parameters (after `?`), as `user`.
    func status(_ parameters: String, user: String = "postgres", host: String = "127.0.0.1") async throws
        -> ProcessResult
    {
        let url = try await TLSPostgres.shared.url()
            .replacingOccurrences(of: "postgres@127.0.0.1", with: "\(user)@\(host)")
        return try soundbatch(["status", "--ledger", url + (parameters.isEmpty ? "" : "?" + parameters)], in: folder.path)
    }

    var certificates: String { TLSPostgres.shared.certificates.path }

    /// Connected: the ledger was read, or the database holds none yet and says so (the
    /// tests share the database, and one of them feeds it).
    func connected(_ result: ProcessResult) -> Bool {
        (result.status == 0 || result.stderr.contains("there is no ledger at")) && !result.stderr.contains("cannot open")
    }

    @Test func theDefaultAndEveryModeThatAllowsTLSConnect() async throws {
        let ca = certificates + "/ca.crt"
        for parameters in [
            "", "sslmode=prefer", "sslmode=allow", "sslmode=require", "sslmode=verify-ca&sslrootcert=\(ca)",
            "sslmode=require&sslrootcert=\(ca)"
        ] {
            let result = try await status(parameters)
            #expect(connected(result), "\(parameters): \(result.stderr)")
        }
        // By the name the certificate holds, verify-full connects too.
        let byName = try await status("sslmode=verify-full&sslrootcert=\(ca)", host: "localhost")
        #expect(connected(byName), "\(byName.stderr)")
    }

    @Test func whatCannotConnectSaysWhichCheckFailedAndTheFix() async throws {
        let folder = certificates
        let cases: [(String, String, [String])] = [
            ("sslmode=disable", "postgres", ["no encryption", "leave out sslmode=disable"]),
            ("sslmode=verify-ca", "postgres", ["no CA is given", "sslrootcert=PATH", "sslrootcert=system"]),
            (
                "sslmode=verify-ca&sslrootcert=\(folder)/another-ca.crt", "postgres",
                ["could not be verified", "not signed by a CA in \(folder)/another-ca.crt", "sslrootcert=PATH"]
            ),
            (
                "sslmode=require&sslrootcert=\(folder)/another-ca.crt", "postgres",
                ["could not be verified"]  // as libpq: with a CA at hand, require checks it
            ),
            ("sslmode=verify-full&sslrootcert=\(folder)/ca.crt", "postgres", ["does not name 127.0.0.1", "verify-ca"]),
            ("sslmode=require", "certuser", ["client certificate", "sslcert=PATH&sslkey=PATH"]),
            ("sslmode=verify-ca&sslrootcert=\(folder)/nowhere.crt", "postgres", ["cannot read \(folder)/nowhere.crt"])
        ]
        for (parameters, user, words) in cases {
            let result = try await status(parameters, user: user)
            #expect(result.status == 74, "\(parameters): \(result.stderr)")
            for word in words { #expect(result.stderr.contains(word), "\(parameters): \(result.stderr)") }
            // Never a path inside a build folder, nor BoringSSL's own words.
            #expect(!result.stderr.contains(".build") && !result.stderr.contains("OPENSSL_internal"), "\(result.stderr)")
        }
    }

    @Test func aClientCertificateIsShownWhenGiven() async throws {
        let folder = certificates
        let result = try await status(
            "sslmode=verify-ca&sslrootcert=\(folder)/ca.crt&sslcert=\(folder)/client.crt&sslkey=\(folder)/client.key",
            user: "certuser")
        #expect(connected(result), "\(result.stderr)")
        // A batch is fed and read back over it.
        let url = try await TLSPostgres.shared.url().replacingOccurrences(of: "postgres@", with: "certuser@")
            + "?sslmode=verify-ca&sslrootcert=\(folder)/ca.crt&sslcert=\(folder)/client.crt&sslkey=\(folder)/client.key"
        let csv = try self.folder.writeJobs(3, prompt: "a door")
        let fed = try soundbatch(["run", csv, "--dry-run", "--ledger", url], in: self.folder.path)
        #expect(fed.status == 0 && fed.stdout.contains("3 new"), "\(fed.stderr)")
    }
}

/// Mistakes in a database URL, said with their fix.
@Suite struct DatabaseURLMistakeTests {
    let folder = try! TemporaryFolder()

    @Test func aHashInThePasswordAskedForPercentEncoding() {
        #expect {
            try DatabaseURL("postgres://sound:pa#ss@db.example/soundbatch", environment: [:])
        } throws: { error in
            "\(error)".contains("%23") && !"\(error)".contains("pa#ss")
        }
    }

    @Test func aMisspelledSchemeIsNotTakenForAFile() throws {
        let result = try soundbatch(["status", "--ledger", "postgre://sound@db/soundbatch"], in: folder.path)
        #expect(result.status == 74 && result.stderr.contains("postgres://"), "\(result.stderr)")
        #expect(!result.stderr.contains("No such file"))
    }

    @Test func aServerThatWantsAPasswordSaysWhereItCanComeFrom() async throws {
        // The test cluster trusts loopback; a server that asks for a password is a listener of our own
        // that answers the startup message as PostgreSQL does for md5 authentication.
        let server = try PasswordAskingServer()
        defer { server.stop() }
        let result = try soundbatch(
            ["status", "--ledger", "postgres://sound@127.0.0.1:\(server.port)/soundbatch?sslmode=disable"],
            in: folder.path, environment: ["PGPASSFILE": folder.file("none")])
        #expect(result.status == 74, "\(result.stderr)")
        for word in ["wants a password", "PGPASSWORD", "~/.pgpass"] {
            #expect(result.stderr.contains(word), "\(result.stderr)")
        }
    }
}

/// A loopback listener that answers a PostgreSQL startup message by asking for an md5 password.
final class PasswordAskingServer: @unchecked Sendable {
    let port: Int
    private let socket: Int32
    private var thread: Thread?

    init() throws {
        let listening = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listening, $0, length) }
        }
        listen(listening, 4)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listening, $0, &length) }
        }
        socket = listening
        port = Int(UInt16(bigEndian: address.sin_port))
        let answering = Thread {
            while true {
                let client = accept(listening, nil, nil)
                if client < 0 { return }
                var buffer = [UInt8](repeating: 0, count: 1024)
                _ = read(client, &buffer, buffer.count)  // the startup message
                // AuthenticationMD5Password: 'R', length 12, code 5, a salt.
                let ask: [UInt8] = [UInt8(ascii: "R"), 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4]
                _ = write(client, ask, ask.count)
                usleep(200_000)
                close(client)
            }
        }
        answering.start()
        thread = answering
    }

    func stop() {
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
    }
}
