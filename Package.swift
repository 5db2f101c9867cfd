// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "soundbatch",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "soundbatch", targets: ["soundbatch"]),
        .library(name: "SoundbatchCore", targets: ["SoundbatchCore"]),
        .library(name: "SoundbatchSQLite", targets: ["SoundbatchSQLite"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/pointfreeco/swift-clocks", from: "1.1.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6")
    ],
    targets: [
        // The domain in folders by stage (CSV -> jobs -> requests -> sounds -> reports), the
        // ledger's seam, and the workflow of a batch run. No storage code: see SoundbatchSQLite.
        .target(
            name: "SoundbatchCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                "Serving",
                "SoundbatchAudio"
            ],
            // The pages are files of their own, for editors, linters and readers, kept in the
            // binary so that a copied soundbatch serves them.
            resources: [
                .embedInCode("Review/Page/review.html"), .embedInCode("Review/Page/review.css"),
                .embedInCode("Review/Page/review.js"), .embedInCode("Reports/Formats/report.html"),
                .embedInCode("Library/UCS/ucs-8.2.1-en.json")
            ]
        ),
        // The ledger in one SQLite file (GRDB), the default backend. The only code that touches SQLite.
        .target(
            name: "SoundbatchSQLite",
            dependencies: [
                "SoundbatchCore",
                "CSQLiteSetup",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift")
            ]
        ),
        // The ledger on a PostgreSQL server, for teams (postgres-nio). The only code that touches PostgreSQL.
        .target(
            name: "SoundbatchPostgres",
            dependencies: [
                "SoundbatchCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log")
            ]
        ),
        // Picks the ledger's backend from where it is; all the command line knows of storage.
        .target(name: "SoundbatchLedgers", dependencies: ["SoundbatchCore", "SoundbatchSQLite", "SoundbatchPostgres"]),
        // Runs an HTTP server for as long as a piece of work, then stops it gracefully.
        .target(
            name: "Serving",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio")
            ]
        ),
        // The field's own audio libraries, from Debian's packages, reached as GRDB reaches the
        // system's SQLite: libsndfile decodes what the service sends (WAV, FLAC, Ogg, MP3) and
        // writes WAV and FLAC; libebur128 measures loudness and true peak (EBU R128); libsamplerate
        // converts sample rates; libFLAC writes a FLAC file's Vorbis comments.
        .systemLibrary(name: "CSndFile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CEbur128", pkgConfig: "libebur128", providers: [.apt(["libebur128-dev"])]),
        .systemLibrary(name: "CSampleRate", pkgConfig: "samplerate", providers: [.apt(["libsamplerate0-dev"])]),
        .systemLibrary(name: "CFLAC", pkgConfig: "flac", providers: [.apt(["libflac-dev"])]),
        // Sound files read, measured and written: the one place that touches audio.
        .target(name: "SoundbatchAudio", dependencies: ["CSndFile", "CEbur128", "CSampleRate", "CFLAC"]),
        // sqlite3_config, which Swift cannot call (it is variadic).
        .target(name: "CSQLiteSetup", linkerSettings: [.linkedLibrary("sqlite3")]),
        // A local stand-in for the MusicGPT API, faithful to ../shared/api/, for tests and newcomers.
        .target(
            name: "SoundbatchSandbox",
            dependencies: [
                "SoundbatchCore",
                "SoundbatchAudio",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                "Serving"
            ]
        ),
        // A thin layer of commands over the core.
        .executableTarget(
            name: "soundbatch",
            dependencies: [
                "SoundbatchCore",
                "SoundbatchLedgers",
                "SoundbatchSandbox",
                "SoundbatchAudio",
                "Serving",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log")
            ]
        ),
        // What the test targets share: temporary folders, child processes of the command
        // line, both backends of the ledger, clocks to drive. Test code only.
        .target(
            name: "SoundbatchTesting",
            dependencies: [
                "SoundbatchCore", "SoundbatchSQLite", "SoundbatchPostgres", "SoundbatchSandbox",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Clocks", package: "swift-clocks"),
                .product(name: "Logging", package: "swift-log")
            ],
            path: "Tests/SoundbatchTesting"
        ),
        // One test target per module; the core's stages are driven over a real SQLite ledger.
        .testTarget(
            name: "SoundbatchCoreTests",
            dependencies: [
                "SoundbatchCore", "SoundbatchSQLite", "SoundbatchSandbox", "SoundbatchTesting", "Serving",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Clocks", package: "swift-clocks"),
                .product(name: "Hummingbird", package: "hummingbird")
            ]
        ),
        .testTarget(
            name: "SoundbatchSQLiteTests",
            dependencies: ["SoundbatchSQLite", "SoundbatchTesting", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "SoundbatchPostgresTests",
            dependencies: [
                "SoundbatchPostgres", "SoundbatchTesting", .product(name: "PostgresNIO", package: "postgres-nio")
            ]
        ),
        // The seam's promises, kept by both backends alike.
        .testTarget(
            name: "SoundbatchLedgersTests",
            dependencies: [
                "SoundbatchSQLite", "SoundbatchPostgres", "SoundbatchTesting",
                .product(name: "PostgresNIO", package: "postgres-nio")
            ]
        ),
        .testTarget(name: "SoundbatchSandboxTests", dependencies: ["SoundbatchSandbox"]),
        .testTarget(name: "SoundbatchAudioTests", dependencies: ["SoundbatchAudio", "SoundbatchTesting"]),
        .testTarget(
            name: "ServingTests",
            dependencies: ["Serving", "SoundbatchTesting", .product(name: "Hummingbird", package: "hummingbird")]
        ),
        // The command line, as real child processes.
        .testTarget(
            name: "soundbatchTests",
            dependencies: [
                "soundbatch", "SoundbatchSandbox", "SoundbatchTesting", .product(name: "GRDB", package: "GRDB.swift")
            ],
            exclude: ["Corpus"]  // hostile CSV files, read by path
        )
    ]
)
