import API
import CLinux
import Foundation
import ImageStore
import Logging
import OCI
import Registry
import Wire

/// The supervisor: owns the stores, answers RPC methods, and watches every running
/// container through its shim. Each client connection has its own thread; shared state is
/// in SQLite (serialized by GRDB) and the sets under `lock` below.
public final class Daemon: @unchecked Sendable {
    let config: DaemonConfig
    let metadata: Metadata
    let content: ContentStore
    let snapshots: Snapshotter
    let importer: ImageImporter
    let events: EventLog
    let log: Logger
    /// The root's lock file, held (flock) for the daemon's life: one daemon per root.
    private let lockFD: Int32
    let lock = NSLock()
    /// Containers whose exit a monitor thread is waiting for.
    var monitored = Set<String>()
    /// Containers being stopped or removed on purpose: their exit does not trigger a restart.
    var stopping = Set<String>()
    /// Containers a remove is under way for: a second remove (the client's after the daemon's
    /// auto-remove) waits for the first instead of racing it.
    var removing = Set<String>()
    /// Containers whose pending restart (status `restarting`) a stop or remove has cancelled.
    var cancelledRestarts = Set<String>()
    /// Imports share the content store; garbage collection has it alone.
    let storeLock = StoreLock()
    /// The health of each running container with a check (see Health.swift).
    var health: [String: HealthInfo] = [:]
    /// Host ports held for each container's published ports (see Ports.swift).
    var reservedPorts: [String: [Int32]] = [:]
    /// One lock per container for its network's set-up and teardown.
    var networkLocks: [String: NSLock] = [:]
    /// aardvark-dns for names on user-defined networks.
    let nameServer: NameServer
    /// The registry client (pulls), with its connection pool.
    let registry: Registry
    static let version = "0.2.0"

    public init(config: DaemonConfig, log: Logger) throws {
        self.config = config
        self.log = log
        for dir in [config.root, config.root + "/containers", config.root + "/volumes", config.state, config.state + "/containers",
                    config.state + "/shims", config.state + "/runtime"] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        chmod(config.root, 0o700)
        chmod(config.state, 0o700)
        lockFD = try Daemon.lockRoot(config.root)
        metadata = try Metadata(path: config.root + "/metadata.db")
        events = EventLog(metadata: metadata, log: log)
        content = try ContentStore(root: config.root + "/content")
        snapshots = try Snapshotter(root: config.root + "/snapshots", content: content, maxLayerBytes: config.maxLayerBytes)
        importer = ImageImporter(content: content, scratchRoot: config.root + "/content/scratch")
        nameServer = NameServer(dir: config.state + "/aardvark-dns")
        registry = Registry(options: config.registry)
        moveVolumesIntoNamespaces()
    }

    deinit { close(lockFD) }

    /// Takes an exclusive lock on ROOT/lock, or says which daemon holds it.
    static func lockRoot(_ root: String) throws -> Int32 {
        let path = root + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw APIError.internal("open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            throw APIError.conflict("another scontainerd (pid \(holder)) is using \(root)")
        }
        ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return fd
    }

    // MARK: paths

    func bundleDir(_ id: String) -> String { config.state + "/containers/" + id }
    func rootfsDir(_ id: String) -> String { bundleDir(id) + "/rootfs" }
    func containerDir(_ id: String) -> String { config.root + "/containers/" + id }
    func logPath(_ id: String) -> String { containerDir(id) + "/log.json" }
    /// A shim's state dir is named by a 16-digit id prefix: its socket paths must fit in sun_path.
    func shim(_ id: String) -> ShimLink { ShimLink(stateDir: config.state + "/shims/" + id.prefix(16)) }
    func volumeDir(_ ns: String, _ name: String) -> String { config.root + "/volumes/" + ns + "/" + name + "/_data" }

    /// Protocol 1 kept volumes at volumes/NAME; they belong to the default namespace now.
    private func moveVolumesIntoNamespaces() {
        for v in (try? metadata.volumes(Request.defaultNamespace)) ?? [] {
            let old = config.root + "/volumes/" + v.name + "/_data", new = volumeDir(v.namespace, v.name)
            guard FileManager.default.fileExists(atPath: old), !FileManager.default.fileExists(atPath: new) else { continue }
            do {
                try FileManager.default.createDirectory(atPath: (new as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try FileManager.default.moveItem(atPath: old, toPath: new)
                rmdir((old as NSString).deletingLastPathComponent)
            } catch {
                log.error("moving volume \(v.name) into its namespace: \(error)")
            }
        }
    }

    /// Runs `body`, logging (not throwing) a failure: for cleanup whose failure must be seen
    /// but must not stop the rest of the cleanup.
    func logged(_ what: @autoclosure () -> String, _ body: () throws -> Void) {
        do { try body() } catch { log.warning("\(what()): \(error)") }
    }

    /// 64 hex digits from the system's random source.
    static func newID() -> String {
        (UUID().uuidString + UUID().uuidString).replacingOccurrences(of: "-", with: "").lowercased()
    }
}
