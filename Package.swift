// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "FieldOps",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fieldops", targets: ["fieldops"]),
        .library(name: "Redis", targets: ["Redis"]),
        .library(name: "Streams", targets: ["Streams"]),
        .library(name: "DocumentStore", targets: ["DocumentStore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        // FullFoundation only: with default traits SwiftPM rebuilds Hummingbird on every switch
        // between `swift build` and `swift test`.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
    ],
    targets: [
        // hiredis, the C client. Only `Redis` imports it.
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // Reply objects for hiredis from one reusable block per connection (see its header).
        .target(
            name: "CRedisReplyArena",
            dependencies: ["CHiredis"]
        ),
        // A safe, binary-safe Swift layer over hiredis: connections, pipelining, pool, scripts, pub/sub.
        .target(
            name: "Redis",
            dependencies: [
                "CHiredis",
                "CRedisReplyArena",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The stream library: producer, manager, consumer, consumer groups, dead letters.
        .target(
            name: "Streams",
            dependencies: [
                "Redis",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Named collections of JSON documents on SQLite (Firestore's role), with safe queries.
        .target(
            name: "DocumentStore",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // The live key tree (Realtime Database's role): paths, values, server values, changes.
        .target(
            name: "LiveTree",
            dependencies: ["Redis", "Streams", "DocumentStore"]
        ),
        // Attachment bytes on disk (Cloud Storage's role): safe paths, atomic writes, resumable uploads.
        .target(
            name: "FileStore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // ncursesw, for the dispatcher's terminal. Only FieldOpsCLI's Dispatch/Terminal.swift imports it.
        .systemLibrary(
            name: "CNCurses",
            providers: [.apt(["libncurses-dev"])]
        ),
        // The dispatcher's board: state from events, commands, layout on a text grid. No I/O.
        .target(
            name: "DispatchBoard",
            dependencies: ["Domain", "DocumentStore"]
        ),
        // Domain vocabulary: event types, their payloads, the task state machine. No storage.
        .target(name: "Domain"),
        // Projections of the streams into the document store: appliers and the projector.
        .target(
            name: "Projections",
            dependencies: [
                "Domain",
                "Streams",
                "DocumentStore",
                "Redis",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Incident replay: a tenant's streams between two instants, merged into one timeline.
        .target(
            name: "Replay",
            dependencies: ["Redis", "Streams", "Domain", "DocumentStore", "Projections"]
        ),
        // The HTTP server: routes, errors, supervised services. `fieldops serve` runs it.
        .target(
            name: "FieldOpsServer",
            dependencies: [
                "Redis",
                "Streams",
                "DocumentStore",
                "Projections",
                "Domain",
                "LiveTree",
                "FileStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The `fieldops` command line: subcommands live here so tests can reach them.
        .target(
            name: "FieldOpsCLI",
            dependencies: [
                "Redis",
                "Streams",
                "DocumentStore",
                "Projections",
                "Domain",
                "FieldOpsServer",
                "FileStore",
                "DispatchBoard",
                "Replay",
                "CNCurses",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "fieldops",
            dependencies: ["FieldOpsCLI"]
        ),
        .testTarget(name: "RedisTests", dependencies: ["Redis"]),
        .testTarget(name: "StreamsTests", dependencies: ["Streams", "Redis"]),
        .testTarget(name: "DocumentStoreTests", dependencies: ["DocumentStore"]),
        .testTarget(name: "DomainTests", dependencies: ["Domain"]),
        .testTarget(name: "DispatchBoardTests", dependencies: ["DispatchBoard", "Domain", "DocumentStore"], exclude: ["Golden"]),
        .testTarget(
            name: "FileStoreTests",
            dependencies: ["FileStore", .product(name: "Crypto", package: "swift-crypto"), .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(name: "LiveTreeTests", dependencies: ["LiveTree", "Streams", "Redis", "DocumentStore"]),
        .testTarget(name: "ProjectionsTests", dependencies: ["Projections", "Domain", "DocumentStore", "Streams", "Redis"]),
        .testTarget(
            name: "FieldOpsServerTests",
            dependencies: [
                "FieldOpsServer",
                "Redis",
                "Streams",
                "DocumentStore",
                "Projections",
                "LiveTree",
                "FileStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        .testTarget(name: "FieldOpsCLITests", dependencies: ["FieldOpsCLI", "Replay", "FieldOpsServer", "Streams", "Redis", "DocumentStore", "Projections", .product(name: "NIOPosix", package: "swift-nio")]),
    ],
    swiftLanguageModes: [.v6]
)
