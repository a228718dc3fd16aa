import API
import ArgumentParser
import CLinux
import Daemon
import Foundation
import ImageStore
import Logging

/// scontainerd: the supervisor daemon. One per root (an exclusive lock says so); serves the
/// JSON-lines RPC on a root-only socket until SIGTERM or SIGINT, then removes the socket.
struct Scontainerd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scontainerd",
        abstract: "The srunc supervisor: images, containers through sshim, volumes, events, over a JSON-lines RPC.",
        version: "scontainerd 0.2.0 (protocol \(protocolVersion))",
        subcommands: [UnpackLayer.self, Check.self, NetworksDown.self])

    @Option(help: "Content, snapshots, container data, volumes, metadata.db.") var root = "/var/lib/scontainerd"
    @Option(help: "Socket, bundles, shim state, the runtime's state.") var state = "/run/scontainerd"
    @Option(help: "The RPC socket (default STATE/scontainerd.sock).") var socket: String?
    @Option(help: "The sshim binary (default: beside scontainerd).") var shim: String?
    @Option(help: "The OCI runtime (default: srunc beside scontainerd).") var runtime: String?
    @Option(help: "overlay (falls back to copying where it cannot mount) or copy.") var snapshotter = "overlay"
    @Option(help: "The most bytes one image layer may unpack to (e.g. 512m, 16g).") var maxLayerSize = "16g"
    @Option(help: "Imports stop while the store's disk has less than this free (e.g. 256m).") var minFreeSpace = "256m"
    @Option(help: "The daemon's log file (default ROOT/scontainerd.log).") var logFile: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel = "info"
    @Option(help: "A registry (host[:port]) that may be reached over plain HTTP (loopback ones always may).") var insecureRegistry: [String] = []
    @Option(help: "A mirror (host[:port]) tried before docker.io for its images.") var registryMirror: [String] = []
    @Option(help: "Per-registry CAs as HOST[:PORT]/ca.crt.") var certsDir = "/etc/docker/certs.d"
    @Option(help: "docker's config.json with registry credentials (default ~/.docker/config.json).") var authFile: String?

    func validate() throws {
        for (flag, path) in [("--root", root), ("--state", state), ("--socket", socket), ("--shim", shim), ("--runtime", runtime), ("--log-file", logFile)] {
            if let path, !path.hasPrefix("/") { throw ValidationError("\(flag) needs an absolute path, got \(path)") }
        }
        guard ["overlay", "copy"].contains(snapshotter) else { throw ValidationError("--snapshotter is overlay or copy, got \(snapshotter)") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: \(logLevel) is not a level") }
        guard Self.bytes(minFreeSpace) != nil else { throw ValidationError("--min-free-space: a size such as 256m or 1g, got \(minFreeSpace)") }
        guard Self.bytes(maxLayerSize) != nil else { throw ValidationError("--max-layer-size: a size such as 512m or 16g, got \(maxLayerSize)") }
    }

    func run() throws {
        guard getuid() == 0 else { throw ValidationError("scontainerd runs as root") }
        var config = DaemonConfig()
        config.root = root
        config.state = state
        config.socket = socket
        if let shim { config.shim = shim }
        if let runtime { config.runtime = runtime }
        config.snapshotter = snapshotter
        config.maxLayerBytes = Self.bytes(maxLayerSize)!
        config.minFreeBytes = Self.bytes(minFreeSpace)!
        config.registry.insecure = insecureRegistry
        config.registry.mirrors = registryMirror
        config.registry.certsDir = certsDir
        if let authFile { config.registry.authFile = authFile }
        // Stop signals go to one thread that removes the socket and exits; blocked before any
        // other thread exists, so none of them ever takes the signal.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        // A fixed mmap threshold: a connection's large buffer goes back to the system when it
        // is freed (glibc would otherwise raise the threshold and keep such buffers in the heap).
        _ = cl_fixed_mmap_threshold(256 << 10)
        let level = Logger.Level(rawValue: logLevel)!
        let file = try FileLogHandler(label: "scontainerd", path: logFile ?? root + "/scontainerd.log", level: level)
        LoggingSystem.bootstrap { label in
            var stderr = StreamLogHandler.standardError(label: label)
            stderr.logLevel = level
            return MultiplexLogHandler([stderr, file])
        }
        let log = Logger(label: "scontainerd")
        let daemon: Daemon
        do { daemon = try Daemon(config: config, log: log) } catch { log.critical("\(error)"); throw ExitCode.failure }
        // Bound before recovery (a second daemon on this socket is refused before touching
        // anything); clients wait in the backlog until recovery is done.
        let server = RPCServer(daemon: daemon)
        do { try server.listen() } catch { log.critical("\(error)"); throw ExitCode.failure }
        daemon.recover()
        let socketPath = config.socketPath
        let waitFor = stopSignals
        Thread.detachNewThread {
            var set = waitFor, signal: Int32 = 0
            sigwait(&set, &signal)
            unlink(socketPath)
            log.notice("signal \(signal): stopped serving \(socketPath); containers keep running under their shims")
            Glibc.exit(0)
        }
        log.notice("serving \(socketPath) (root \(config.root), runtime \(config.runtime))")
        server.serve()
    }
}

/// The store checked against itself (the daemon stopped): exit 1 and a line per problem.
extension Scontainerd {
    /// "512m", "16g", "1048576": bytes (k, m, g, t are powers of 1024).
    static func bytes(_ text: String) -> Int? {
        var digits = text.lowercased()
        var scale = 1
        if let unit = digits.last, let power = ["k": 1, "m": 2, "g": 3, "t": 4][String(unit)] {
            scale = 1 << (10 * power)
            digits.removeLast()
        }
        guard let n = Int(digits), n > 0, n <= Int.max / scale else { return nil }
        return n * scale
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the store: blobs against digests, records against disk.")
    @Argument(help: "The daemon's root.") var root = "/var/lib/scontainerd"

    func run() throws {
        let problems = try StoreCheck.run(root: root)
        for p in problems { print(p) }
        if !problems.isEmpty { throw ExitCode.failure }
        print("\(root): consistent")
    }
}

/// Every network off the host, for a stopped daemon (uninstall, or tests that end what they made).
struct NetworksDown: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "networks-down",
                                                    abstract: "Take the networks of a stopped daemon off the host: attachments, bridges, rules, DNS.")
    @Argument(help: "The daemon's root.") var root = "/var/lib/scontainerd"
    @Argument(help: "The daemon's state directory.") var state = "/run/scontainerd"

    func run() throws {
        guard FileManager.default.fileExists(atPath: root + "/metadata.db") else { throw ValidationError("\(root) holds no scontainerd store") }
        var config = DaemonConfig()
        config.root = root
        config.state = state
        let daemon = try Daemon(config: config, log: Logger(label: "scontainerd"))
        let problems = daemon.takeNetworksDown()
        for p in problems { print(p) }
        if !problems.isEmpty { throw ExitCode.failure }
    }
}

/// The layer unpacker alone: benchmarks, debugging. Several pairs unpack in parallel, as an
/// image's missing layers do.
struct UnpackLayer: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unpack-layer", abstract: "Unpack layer tarballs (gzip or not), each into its directory: LAYER DIR [LAYER DIR ...].")
    @Argument(help: "Pairs of a layer (tar or tar.gz) and the directory to unpack it into.") var pairs: [String]

    func validate() throws {
        guard !pairs.isEmpty, pairs.count % 2 == 0 else { throw ValidationError("expected LAYER DIR pairs, got \(pairs.count) arguments") }
    }

    func run() throws {
        let pairs = self.pairs
        try Snapshotter.inParallel(pairs.count / 2) { k in
            let layer = pairs[2 * k], directory = pairs[2 * k + 1]
            var source: ByteSource = try FileSource(path: layer)
            if FileSource.peek(layer, count: 2) == [0x1f, 0x8b] { source = try GzipSource(source) }
            let unpacker = try LayerUnpacker(root: directory)
            defer { unpacker.close() }
            try unpacker.unpack(TarReader(source))
        }
    }
}

Scontainerd.main()
