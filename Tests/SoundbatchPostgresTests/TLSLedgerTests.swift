import Foundation
import SoundbatchTesting
import Testing

@testable import SoundbatchCore

/// TLS to a team's database as libpq's users expect it, against a server that takes nothing else.
@Suite struct TLSLedgerTests {
    let folder = try! TemporaryFolder()

    /// `status` on the TLS cluster with these URL parameters (after `?`), as `user`.
    func status(
        _ parameters: String, user: String = "postgres", host: String = "127.0.0.1"
    ) async throws
        -> ProcessResult
    {
        let url = try await TLSPostgres.shared.url()
            .replacingOccurrences(of: "postgres@127.0.0.1", with: "\(user)@\(host)")
        return try await soundbatch(
            ["status", "--ledger", url + (parameters.isEmpty ? "" : "?" + parameters)], in: folder.path)
    }

    var certificates: String { TLSPostgres.shared.certificates.path }

    /// Connected: the ledger was read, or the database holds none yet and says so (the
    /// tests share the database, and one of them feeds it).
    func connected(_ result: ProcessResult) -> Bool {
        (result.status == 0 || result.stderr.contains("there is no ledger at"))
            && !result.stderr.contains("cannot open")
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
            #expect(
                !result.stderr.contains(".build") && !result.stderr.contains("OPENSSL_internal"), "\(result.stderr)")
        }
    }

    @Test func aClientCertificateIsShownWhenGiven() async throws {
        let folder = certificates
        let result = try await status(
            "sslmode=verify-ca&sslrootcert=\(folder)/ca.crt&sslcert=\(folder)/client.crt&sslkey=\(folder)/client.key",
            user: "certuser")
        #expect(connected(result), "\(result.stderr)")
        // A batch is fed and read back over it.
        let url =
            try await TLSPostgres.shared.url().replacingOccurrences(of: "postgres@", with: "certuser@")
            + "?sslmode=verify-ca&sslrootcert=\(folder)/ca.crt&sslcert=\(folder)/client.crt&sslkey=\(folder)/client.key"
        let csv = try self.folder.writeJobs(3, prompt: "a door")
        let fed = try await soundbatch(["run", csv, "--dry-run", "--ledger", url], in: self.folder.path)
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

    @Test func aMisspelledSchemeIsNotTakenForAFile() async throws {
        let result = try await soundbatch(["status", "--ledger", "postgre://sound@db/soundbatch"], in: folder.path)
        #expect(result.status == 74 && result.stderr.contains("postgres://"), "\(result.stderr)")
        #expect(!result.stderr.contains("No such file"))
    }

    @Test func aServerThatWantsAPasswordSaysWhereItCanComeFrom() async throws {
        // The test cluster trusts loopback; a server that asks for a password is a listener of our own
        // that answers the startup message as PostgreSQL does for md5 authentication.
        let server = try PasswordAskingServer()
        defer { server.stop() }
        let result = try await soundbatch(
            ["status", "--ledger", "postgres://sound@127.0.0.1:\(server.port)/soundbatch?sslmode=disable"],
            in: folder.path, environment: ["PGPASSFILE": folder.file("none")])
        #expect(result.status == 74, "\(result.stderr)")
        for word in ["wants a password", "PGPASSWORD", "~/.pgpass"] {
            #expect(result.stderr.contains(word), "\(result.stderr)")
        }
    }
}
