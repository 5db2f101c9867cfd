// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "soundbatch",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "soundbatch", targets: ["soundbatch"]),
        .library(name: "SoundbatchCore", targets: ["SoundbatchCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // The domain: CSV -> jobs, the ledger, and (later) the client, dispatcher, tracker, reports.
        .target(
            name: "SoundbatchCore",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // A thin layer of commands over the core.
        .executableTarget(
            name: "soundbatch",
            dependencies: [
                "SoundbatchCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SoundbatchCoreTests",
            dependencies: ["SoundbatchCore", "soundbatch"]
        ),
    ]
)
