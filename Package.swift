// swift-tools-version:6.1
import PackageDescription

/// Every logged byte passes through these: unoptimized they run 10x slower, so the debug builds
/// the tests use would measure a different shim.
let alwaysOptimized: [SwiftSetting] = [.unsafeFlags(["-O"])]

/// srunc: an OCI runtime (srunc), its per-container shim (sshim) and supervisor (scontainerd).
/// Executables are thin; the logic lives in the library targets.
let package = Package(
    name: "srunc",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "srunc", targets: ["srunc"]),
        .executable(name: "sshim", targets: ["sshim"]),
        .executable(name: "scontainerd", targets: ["scontainerd"]),
        .executable(name: "sctr", targets: ["sctr"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        // Digests of everything the store takes in: a maintained SHA-256 (BoringSSL's), not ours.
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
        // Registries: HTTP/1.1 and TLS with per-registry CAs (URLSession on Linux cannot take a
        // trust root per request), streaming bodies, Range requests.
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
    ],
    targets: [
        // The few syscalls and macros Swift cannot import (clone, setns, variadic prctl/ioctl, cmsg).
        .target(name: "CLinux", linkerSettings: [.linkedLibrary("cap"), .linkedLibrary("seccomp")]),
        // Codable types of the OCI runtime spec. Pure data.
        .target(name: "OCI"),
        // What crosses process boundaries, without Foundation: JSON values, base64, RFC 3339 times, unix sockets.
        .target(name: "Wire", swiftSettings: alwaysOptimized),
        // The libcontainer of srunc: state store, lifecycle, rootfs, namespaces, capabilities.
        .target(name: "Runtime", dependencies: ["CLinux", "OCI", "Wire"]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // Images: content store, tar and gzip readers, importers, layer unpacking into snapshots.
        .target(name: "ImageStore", dependencies: ["CLinux", "CZlib", "OCI", .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: alwaysOptimized),
        // The OCI distribution protocol: pull from (and push to) registries into the content store.
        .target(name: "Registry", dependencies: [
            "ImageStore", "OCI", .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log"),
        ]),
        // The supervisor: JSON-lines RPC, image and container services, metadata in SQLite.
        // One JSON object per line over unix sockets, shared by the daemon and its client.
        .target(name: "RPC", dependencies: ["CLinux", "Wire"]),
        // The daemon's contract: every method's params, result and errors, every notice and event.
        .target(name: "API", dependencies: ["OCI", "Wire"]),
        .target(name: "Daemon", dependencies: [
            "API", "ImageStore", "OCI", "CLinux", "RPC", "Registry", "Wire",
            .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "scontainerd", dependencies: [
            "Daemon", "ImageStore", "CLinux", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The human-facing client of the daemon's RPC, with docker's grammar.
        .target(name: "SctrCLI", dependencies: ["API", "CLinux", "OCI", "RPC", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "sctr", dependencies: ["SctrCLI"],
            // The Swift libraries linked in: a dynamic sctr spent 40% of its start in ld.so
            // resolving their symbols, and each `run` starts one.
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-Xlinker", "--start-group", "-Xlinker", "-lFoundation", "-Xlinker", "-lFoundationInternationalization", "-Xlinker", "-lFoundationEssentials", "-Xlinker", "-lCoreFoundation", "-Xlinker", "-l_FoundationICU", "-Xlinker", "-l_FoundationCollections", "-Xlinker", "-l_FoundationCShims", "-Xlinker", "-lswiftSynchronization", "-Xlinker", "-lswiftDispatch", "-Xlinker", "-ldispatch", "-Xlinker", "-lBlocksRuntime", "-Xlinker", "-lswiftCore", "-Xlinker", "-lstdc++", "-Xlinker", "--end-group"])]),
        // The per-container shim: stdio, logs, exit status and a control socket, on one epoll loop.
        .target(name: "Shim", dependencies: ["CLinux", "Wire"], swiftSettings: alwaysOptimized),
        .executableTarget(
            name: "sshim", dependencies: ["Shim"],
            // Static and Foundation-free: one runs per container, so its memory is paid many times.
            linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // srunc's command line: runc's flags, verbs and output shapes over Runtime.
        .target(name: "SruncCLI", dependencies: ["Runtime", "OCI"]),
        .executableTarget(
            name: "srunc", dependencies: ["SruncCLI"],
            // Fully static: starts in ~1 ms and runs under containerd/podman with a clean environment.
            linkerSettings: [.unsafeFlags(["-static-executable", "-Xlinker", "-l_FoundationCollections", "-Xlinker", "-l_FoundationCShims", "-Xlinker", "-lswiftSynchronization"])]),
        .testTarget(name: "OCITests", dependencies: ["OCI", "Runtime", "SruncCLI", "Wire", "Shim", "ImageStore", "API"]),
        .testTarget(name: "IntegrationTests", dependencies: ["OCI", "CLinux", "Wire", "API"]),
    ]
)
