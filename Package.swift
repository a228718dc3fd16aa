// swift-tools-version:6.1
import PackageDescription

/// srunc: an OCI runtime (srunc), its per-container shim (sshim) and supervisor (scontainerd).
/// Executables are thin; the logic lives in the library targets.
let package = Package(
    name: "srunc",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "srunc", targets: ["srunc"]),
    ],
    targets: [
        // The few syscalls and macros Swift cannot import (clone, setns, variadic prctl/ioctl, cmsg).
        .target(name: "CLinux", linkerSettings: [.linkedLibrary("cap"), .linkedLibrary("seccomp")]),
        // Codable types of the OCI runtime spec. Pure data.
        .target(name: "OCI"),
        // The libcontainer of srunc: state store, lifecycle, rootfs, namespaces, capabilities.
        .target(name: "Runtime", dependencies: ["CLinux", "OCI"]),
        // srunc's command line: runc's flags, verbs and output shapes over Runtime.
        .target(name: "SruncCLI", dependencies: ["Runtime", "OCI"]),
        .executableTarget(
            name: "srunc", dependencies: ["SruncCLI"],
            // Fully static: starts in ~1 ms and runs under containerd/podman with a clean environment.
            linkerSettings: [.unsafeFlags(["-static-executable", "-Xlinker", "-l_FoundationCollections", "-Xlinker", "-l_FoundationCShims", "-Xlinker", "-lswiftSynchronization"])]),
        .testTarget(name: "OCITests", dependencies: ["OCI", "Runtime", "SruncCLI"]),
        .testTarget(name: "IntegrationTests", dependencies: ["OCI", "CLinux"]),
    ]
)
