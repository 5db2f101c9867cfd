import Foundation
import Logging
import NIOSSL
import PostgresNIO
import SoundbatchCore

/// A PostgreSQL ledger's database, open for as long as `body` runs: a pool of connections,
/// closed when `body` returns or throws.
///
/// One connection is made first, alone: the pool waits for a server that is not there, and
/// keeps its reasons to itself, while a wrong address, password, database name or
/// certificate should end the command at once, saying which and what to do.
public func withPostgres<T: Sendable>(
    _ url: DatabaseURL, logger: Logger, _ body: (PostgresClient) async throws -> T
) async throws -> T {
    let plan = try PostgresTLSPlan(url)
    var chosen: PostgresTLSPlan.Choice?
    for (index, choice) in plan.tries.enumerated() {
        var probe = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database,
            tls: try choice.forConnection())
        probe.options.connectTimeout = .seconds(10)
        do {
            try await PostgresConnection.connect(configuration: probe, id: 0, logger: logger).close()
            chosen = choice
            break
        } catch {
            // sslmode=allow: without TLS first, with it when the server wants it.
            if index < plan.tries.count - 1, PostgresTLSPlan.serverWantsTLS(error) { continue }
            throw LedgerError.cannotOpen(path: url.description, reason: plan.reason(error))
        }
    }

    var poolLogger = logger
    poolLogger.logLevel = .critical  // its connection failures are ours to tell, in our words
    let client = PostgresClient(
        configuration: .init(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database,
            tls: chosen?.forPool() ?? .disable),
        backgroundLogger: poolLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}

/// How to speak TLS to the server, as libpq reads the URL's `sslmode`, `sslrootcert`,
/// `sslcert` and `sslkey` (with its defaults under `~/.postgresql/`).
struct PostgresTLSPlan {
    enum Choice {
        case plain
        case prefer(TLSConfiguration)
        case require(TLSConfiguration)

        func forConnection() throws -> PostgresConnection.Configuration.TLS {
            switch self {
            case .plain: .disable
            case let .prefer(configuration): .prefer(try NIOSSLContext(configuration: configuration))
            case let .require(configuration): .require(try NIOSSLContext(configuration: configuration))
            }
        }

        func forPool() -> PostgresClient.Configuration.TLS {
            switch self {
            case .plain: .disable
            case let .prefer(configuration): .prefer(configuration)
            case let .require(configuration): .require(configuration)
            }
        }
    }

    /// The connections to try, in order.
    var tries: [Choice]
    let mode: DatabaseURL.TLS.Mode
    let host: String
    /// The CA certificates trusted, as said in messages.
    let roots: String?

    init(_ url: DatabaseURL, home: String = NSHomeDirectory()) throws {
        mode = url.tls.mode
        host = url.host
        func given(_ path: String?, else name: String) -> String? {
            if let path { return path }
            let fallback = home + "/.postgresql/" + name
            return FileManager.default.fileExists(atPath: fallback) ? fallback : nil
        }
        let rootFile = given(url.tls.rootCertificate, else: "root.crt")
        roots = rootFile.map { $0 == "system" ? "the system's trusted roots" : $0 }
        let certificate = given(url.tls.certificate, else: "postgresql.crt")
        let key = given(url.tls.key, else: "postgresql.key")
        let location = url.description
        func refuse(_ reason: String) -> LedgerError { .cannotOpen(path: location, reason: reason) }

        func configuration(_ verification: CertificateVerification) throws -> TLSConfiguration {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = verification
            if verification != .none, let rootFile, rootFile != "system" {
                guard FileManager.default.isReadableFile(atPath: rootFile) else {
                    throw refuse(
                        "sslrootcert: cannot read \(rootFile); give the file of the CA that signed the server's certificate"
                    )
                }
                configuration.trustRoots = .file(rootFile)
            }
            if let certificate {
                guard let key else {
                    throw refuse("sslcert is given without sslkey: give both, the certificate and its private key")
                }
                do {
                    configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map {
                        .certificate($0)
                    }
                    configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                } catch {
                    throw refuse(
                        "cannot read the certificate \(certificate) or its key \(key) (PEM files are expected)")
                }
            }
            return configuration
        }
        func verified(_ verification: CertificateVerification) throws -> TLSConfiguration {
            guard rootFile != nil else {
                throw refuse(
                    "sslmode=\(url.tls.mode.rawValue) checks the server's certificate, and no CA is given: add "
                        + "sslrootcert=PATH (the file of the CA that signed it), or sslrootcert=system for the system's "
                        + "trusted roots, or put the CA in ~/.postgresql/root.crt")
            }
            return try configuration(verification)
        }

        switch url.tls.mode {
        case .disable: tries = [.plain]
        case .allow: tries = [.plain, .require(try configuration(.none))]
        case .prefer: tries = [.prefer(try configuration(.none))]
        case .require:
            // As libpq: with a CA at hand, require checks that it signed the certificate.
            tries = [.require(try rootFile == nil ? configuration(.none) : configuration(.noHostnameVerification))]
        case .verifyCA: tries = [.require(try verified(.noHostnameVerification))]
        case .verifyFull: tries = [.require(try verified(.fullVerification))]
        }
    }

    /// The server refused a connection for being unencrypted.
    static func serverWantsTLS(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, let message = error.serverInfo?[.message] else { return false }
        return message.contains("no encryption") || error.serverInfo?[.sqlState] == "28000"
    }

    /// Why a connection failed, in words, with the fix where there is one.
    func reason(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return PostgresLedger.reason(error) }
        switch error.code {
        case .authMechanismRequiresPassword:
            return "the server wants a password: give it in the URL (postgres://USER:PASSWORD@HOST/DATABASE), "
                + "in $PGPASSWORD, or in ~/.pgpass"
        case .sslUnsupported:
            return "the server does not offer TLS, and sslmode=\(mode.rawValue) asks for it: turn ssl on in the "
                + "server's postgresql.conf, or connect with sslmode=prefer"
        case .connectionError:
            if let tls = tlsFailure(error.underlying) { return tls }
        case .server:
            let message = error.serverInfo?[.message] ?? ""
            if Self.serverWantsTLS(error) && mode == .disable {
                return message + "; the server takes only encrypted connections: leave out sslmode=disable "
                    + "(the default, sslmode=prefer, uses TLS when the server offers it)"
            }
            if message.contains("certificate") {
                return message + "; give this side's certificate and key with sslcert=PATH&sslkey=PATH"
            }
        default: break
        }
        return PostgresLedger.reason(error)
    }

    /// A failed TLS handshake in words: which check failed, and the fix.
    private func tlsFailure(_ error: (any Error)?) -> String? {
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return "the server's certificate does not name \(host), which sslmode=verify-full checks: connect by a "
                + "name the certificate holds, or use sslmode=verify-ca to check only that a trusted CA signed it"
        }
        guard let ssl = error as? NIOSSLError else { return nil }
        let detail = "\(ssl)"
        if detail.contains("CERTIFICATE_VERIFY_FAILED") {
            return "the server's certificate could not be verified: it is not signed by a CA in "
                + "\(roots ?? "the trusted roots"), or it has expired. Give the CA that signed it with "
                + "sslrootcert=PATH, or use sslmode=require to encrypt without checking"
        }
        // BoringSSL's reason is the word after "OPENSSL_internal:"; what follows names its source files.
        let word = detail.components(separatedBy: "OPENSSL_internal:").dropFirst().first?
            .prefix { !$0.isWhitespace }
        return "the TLS handshake with the server failed (\(word.map(String.init) ?? "\(ssl)"))"
    }
}
