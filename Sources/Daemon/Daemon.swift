import CLinux
import Foundation
import ImageStore
import OCI

/// The supervisor: owns the stores, answers RPC methods, and watches every running
/// container through its shim. Each client connection has its own thread; shared state is
/// in SQLite (serialized by GRDB) and the per-container locks below.
public final class Daemon: @unchecked Sendable {
    let config: DaemonConfig
    let metadata: Metadata
    let content: ContentStore
    let snapshots: Snapshotter
    let importer: ImageImporter
    let events = EventBus()
    private let lock = NSLock()
    /// Containers whose exit a monitor thread is waiting for.
    private var monitored = Set<String>()
    /// Containers being stopped or removed on purpose: their exit does not trigger a restart.
    private var stopping = Set<String>()
    static let version = "0.1.0"
    static let protocolVersion = 1

    public init(config: DaemonConfig) throws {
        self.config = config
        for dir in [config.root, config.root + "/containers", config.root + "/volumes", config.state, config.state + "/containers",
                    config.state + "/shims", config.state + "/runtime"] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        chmod(config.root, 0o700)
        chmod(config.state, 0o700)
        metadata = try Metadata(path: config.root + "/metadata.db")
        content = try ContentStore(root: config.root + "/content")
        snapshots = try Snapshotter(root: config.root + "/snapshots", content: content)
        importer = ImageImporter(content: content, scratchRoot: config.root + "/content/scratch")
    }

    // MARK: paths

    func bundleDir(_ id: String) -> String { config.state + "/containers/" + id }
    func rootfsDir(_ id: String) -> String { bundleDir(id) + "/rootfs" }
    func containerDir(_ id: String) -> String { config.root + "/containers/" + id }
    func logPath(_ id: String) -> String { containerDir(id) + "/log.json" }
    /// A shim's state dir is named by a 16-digit id prefix: its socket paths must fit in sun_path.
    func shim(_ id: String) -> ShimLink { ShimLink(stateDir: config.state + "/shims/" + id.prefix(16)) }
    func volumeDir(_ name: String) -> String { config.root + "/volumes/" + name + "/_data" }

    // MARK: images

    func storedImage(manifestDigest: String, name: String?) throws -> StoredImage {
        let manifest = try JSONDecoder().decode(ImageManifest.self, from: content.read(manifestDigest))
        let config = try JSONDecoder().decode(ImageConfiguration.self, from: content.read(manifest.config.digest))
        return StoredImage(name: name, manifestDigest: manifestDigest, manifest: manifest, config: config)
    }

    /// An image by name (normalized), or by manifest digest (or a unique prefix of its hex).
    func findImage(_ ref: String) throws -> StoredImage {
        let images = try metadata.images()
        if let hit = images.first(where: { $0.name == ref || $0.name == ImageImporter.normalize(ref) }) {
            return try storedImage(manifestDigest: hit.manifestDigest, name: hit.name)
        }
        let hex = ref.hasPrefix("sha256:") ? String(ref.dropFirst(7)) : ref
        let byDigest = Set(images.filter { hex.count >= 6 && $0.manifestDigest.dropFirst(7).hasPrefix(hex) }.map(\.manifestDigest))
        if byDigest.count == 1, let digest = byDigest.first {
            return try storedImage(manifestDigest: digest, name: images.first { $0.manifestDigest == digest }?.name)
        }
        throw RPCError.notFound("no such image: \(ref)")
    }

    func importImages(path: String, progress: (String) -> Void) throws -> [[String: Any]] {
        let images: [StoredImage]
        do { images = try importer.importImages(from: path, progress: progress) } catch let e as ImageError {
            throw RPCError("invalid-image", e.description)
        }
        var result: [[String: Any]] = []
        for image in images {
            do { try snapshots.prepare(image, progress: progress) } catch let e as ImageError { throw RPCError("invalid-image", e.description) }
            let name = image.name ?? image.manifestDigest
            try metadata.putImage(name: name, manifestDigest: image.manifestDigest)
            events.publish("image", "import", id: image.manifestDigest, attributes: ["name": name])
            result.append(imageSummary(image, name: name))
        }
        return result
    }

    func imageSummary(_ image: StoredImage, name: String) -> [String: Any] {
        ["name": name, "digest": image.manifestDigest, "configDigest": image.manifest.config.digest,
         "size": image.manifest.layers.reduce(Int64(0)) { $0 + $1.size }, "layers": image.manifest.layers.count]
    }

    func removeImage(_ ref: String) throws {
        let image = try findImage(ref)
        let name = image.name ?? ref
        let names = try metadata.images().filter { $0.manifestDigest == image.manifestDigest }
        if names.count == 1, let user = try metadata.containers().first(where: { $0.manifestDigest == image.manifestDigest }) {
            throw RPCError.conflict("image \(name) is used by container \(user.name)")
        }
        _ = try metadata.removeImage(name: name)
        // Snapshots nothing refers to any more go; shared layers stay.
        let remaining = try metadata.images().compactMap { try? storedImage(manifestDigest: $0.manifestDigest, name: $0.name) }
        for dir in snapshots.unused(keeping: remaining) { Snapshotter.removeTree(dir) }
        events.publish("image", "remove", id: image.manifestDigest, attributes: ["name": name])
    }

    // MARK: containers

    func row(_ ref: String) throws -> Metadata.ContainerRow {
        guard let row = try metadata.container(ref) else { throw RPCError.notFound("no such container: \(ref)") }
        return row
    }

    /// Creates a container: rootfs overlay, bundle, and a shim that has run `create`.
    func createContainer(_ options: CreateOptions) throws -> Metadata.ContainerRow {
        let image = try findImage(options.image)
        _ = try RestartPolicy(options.restart)
        if let name = options.name, !Daemon.validName(name) { throw RPCError.params("name: letters, digits, '_', '.', '-'") }
        let id = Daemon.newID()
        let name = options.name ?? "c-" + id.prefix(12)
        try metadata.insertContainer(id: id, name: name, image: image.name ?? image.manifestDigest, manifestDigest: image.manifestDigest, options: options)
        do {
            try prepareBundle(id: id, image: image, options: options)
            try startShim(id: id, options: options)
        } catch {
            teardown(id)
            try? metadata.removeContainer(id)
            throw error
        }
        events.publish("container", "create", id: id, attributes: ["name": name, "image": options.image])
        return try row(id)
    }

    private func prepareBundle(id: String, image: StoredImage, options: CreateOptions) throws {
        let lowers = try snapshots.prepare(image)
        for dir in [containerDir(id) + "/upper", containerDir(id) + "/work", rootfsDir(id)] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        let data = "lowerdir=\(lowers.reversed().joined(separator: ":")),upperdir=\(containerDir(id))/upper,workdir=\(containerDir(id))/work"
        if config.snapshotter == "copy" || mount("overlay", rootfsDir(id), "overlay", 0, data) != 0 {
            // No overlayfs here (or asked not to use it): the rootfs is a private copy, kept on
            // disk beside the container's other data and bound where the bundle expects it.
            let copy = containerDir(id) + "/upper"
            do { try snapshots.materialize(image, into: copy) } catch {
                throw RPCError.internal("copy rootfs: \(error)")
            }
            if mount(copy, rootfsDir(id), nil, UInt(MS_BIND), nil) != 0 {
                throw RPCError.internal("bind rootfs: \(String(cString: strerror(errno)))")
            }
        }
        var mounts: [(String, String, Bool)] = []
        for spec in options.volumes ?? [] {
            let parts = spec.split(separator: ":").map(String.init)
            guard (2...3).contains(parts.count), parts[1].hasPrefix("/"), parts.count == 2 || ["ro", "rw"].contains(parts[2]) else {
                throw RPCError.params("volume \(spec): SOURCE:/DESTINATION[:ro]")
            }
            var source = parts[0]
            if source.hasPrefix("/") {
                guard FileManager.default.fileExists(atPath: source) else { throw RPCError.params("bind source \(source) does not exist") }
            } else {
                guard Daemon.validName(source) else { throw RPCError.params("volume name \(source): letters, digits, '_', '.', '-'") }
                try FileManager.default.createDirectory(atPath: volumeDir(source), withIntermediateDirectories: true)
                if try metadata.putVolume(source) { events.publish("volume", "create", id: source) }
                source = volumeDir(source)
            }
            mounts.append((source, parts[1], parts.count == 3 && parts[2] == "ro"))
        }
        let taken = Set(mounts.map(\.1))
        for (n, destination) in (image.config.config?.Volumes ?? [:]).keys.sorted().enumerated() where !taken.contains(destination) {
            let dir = containerDir(id) + "/volumes/\(n)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            mounts.append((dir, destination, false))
        }
        let spec = try BundleBuilder(options: options, image: image.config, id: id, rootfs: rootfsDir(id), mounts: mounts).spec()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(spec).write(to: URL(fileURLWithPath: bundleDir(id) + "/config.json"))
    }

    private func startShim(id: String, options: CreateOptions) throws {
        var args = ["--id", id, "--bundle", bundleDir(id), "--state-dir", shim(id).stateDir, "--log", logPath(id),
                    "--runtime", config.runtime, "--runtime-root", config.state + "/runtime",
                    "--log-max-size", "100m", "--log-max-files", "3"]
        if options.tty == true { args.append("--terminal") }
        if options.stdin == true { args.append("--stdin") }
        let pid = try ShimLink.start(binary: config.shim, arguments: args)
        try metadata.setStatus(id, "created", pid: pid)
    }

    func startContainer(_ ref: String) throws {
        let c = try row(ref)
        guard c.status == "created" else { throw RPCError.precondition("container \(c.name) is \(c.status)") }
        try shim(c.id).call("start")
        try metadata.setStatus(c.id, "running", started: true)
        events.publish("container", "start", id: c.id, attributes: ["name": c.name])
        monitor(c.id)
    }

    /// Waits (on its own thread) for the container's exit, records it, then applies
    /// auto-remove or the restart policy.
    func monitor(_ id: String) {
        lock.lock()
        let fresh = monitored.insert(id).inserted
        lock.unlock()
        guard fresh else { return }
        Thread.detachNewThread { [self] in
            let link = shim(id)
            let exit = (try? link.call("wait")) ?? link.exitRecord()
            lock.lock()
            monitored.remove(id)
            let deliberate = stopping.contains(id)
            lock.unlock()
            guard let exit, let c = try? metadata.container(id) else { return }
            let code = exit["code"] as? Int ?? -1
            let policy = (try? RestartPolicy(c.options.restart)) ?? RestartPolicy.none
            let again = !deliberate && c.options.autoRemove != true && policy.restarts(exitCode: code, count: c.restartCount)
            try? metadata.setExited(id, code: code, signal: exit["signal"] as? Int, oomKilled: exit["oomKilled"] as? Bool ?? false, restarted: again)
            events.publish("container", "die", id: id, attributes: ["name": c.name, "exitCode": code])
            if c.options.autoRemove == true && !deliberate {
                try? removeContainer(id, force: true)
            } else if again {
                usleep(useconds_t(min(100_000 << min(c.restartCount, 4), 2_000_000)))
                try? restart(id)
            }
        }
    }

    /// A new run of an exited container: same rootfs and config, a new shim and init.
    private func restart(_ id: String) throws {
        let c = try row(id)
        _ = try? shim(id).call("delete", ["force": true])
        try startShim(id: id, options: c.options)
        try shim(id).call("start")
        try metadata.setStatus(id, "running", started: true)
        events.publish("container", "restart", id: id, attributes: ["name": c.name, "restartCount": c.restartCount])
        monitor(id)
    }

    /// SIGTERM (or the image's stop signal), then SIGKILL after `timeout` seconds.
    func stopContainer(_ ref: String, timeout: Double, signal: String = "SIGTERM") throws {
        let c = try row(ref)
        guard c.status == "running" || c.status == "paused" else { return }
        markStopping(c.id, true)
        defer { markStopping(c.id, false) }
        if c.status == "paused" { _ = try? shim(c.id).call("resume") }
        _ = try? shim(c.id).call("kill", ["signal": signal])
        if !waitForExit(c.id, seconds: timeout) {
            _ = try? shim(c.id).call("kill", ["signal": "SIGKILL", "all": true])
            _ = waitForExit(c.id, seconds: 10)
        }
    }

    private func markStopping(_ id: String, _ on: Bool) {
        lock.lock(); defer { lock.unlock() }
        if on { stopping.insert(id) } else { stopping.remove(id) }
    }

    /// Polls until the monitor has recorded the exit.
    func waitForExit(_ id: String, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let c = try? metadata.container(id), c.status == "exited" {
                lock.lock(); let watching = monitored.contains(id); lock.unlock()
                if !watching { return true }
            }
            usleep(20_000)
        }
        return false
    }

    func removeContainer(_ ref: String, force: Bool) throws {
        let c = try row(ref)
        if c.status == "running" || c.status == "paused" {
            guard force else { throw RPCError.conflict("container \(c.name) is \(c.status): stop it first or force") }
            try stopContainer(c.id, timeout: 0)
        }
        markStopping(c.id, true)
        defer { markStopping(c.id, false) }
        _ = try? shim(c.id).call("delete", ["force": true])
        teardown(c.id)
        try metadata.removeContainer(c.id)
        events.publish("container", "destroy", id: c.id, attributes: ["name": c.name])
    }

    /// Unmounts and removes a container's directories; runs the runtime's delete itself if
    /// the shim is gone, so no runtime state or cgroup outlives the container.
    func teardown(_ id: String) {
        if FileManager.default.fileExists(atPath: shim(id).socketPath), !shim(id).isAlive {
            _ = try? execute(config.runtime, ["--root", config.state + "/runtime", "delete", "--force", id])
        }
        umount2(rootfsDir(id), Int32(MNT_DETACH))
        for dir in [bundleDir(id), containerDir(id), shim(id).stateDir] { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// After a restart of the daemon: reconnect to the shims of containers that were running,
    /// and record the exits of those that ended meanwhile (the shim keeps the exit record).
    public func recover() {
        for c in (try? metadata.containers()) ?? [] {
            switch c.status {
            case "running", "paused":
                if shim(c.id).isAlive { monitor(c.id) } else if let exit = shim(c.id).exitRecord() {
                    try? metadata.setExited(c.id, code: exit["code"] as? Int ?? -1, signal: exit["signal"] as? Int,
                                            oomKilled: exit["oomKilled"] as? Bool ?? false, restarted: false)
                } else {
                    try? metadata.setExited(c.id, code: -1, signal: nil, oomKilled: false, restarted: false)
                }
            case "creating":
                teardown(c.id)
                try? metadata.removeContainer(c.id)
            default: break
            }
        }
    }

    func inspect(_ c: Metadata.ContainerRow) -> [String: Any] {
        var info: [String: Any] = ["id": c.id, "name": c.name, "image": c.image, "imageDigest": c.manifestDigest, "status": c.status,
                                   "pid": c.pid, "created": c.created, "restartCount": c.restartCount, "oomKilled": c.oomKilled,
                                   "logPath": logPath(c.id), "bundle": bundleDir(c.id)]
        if let v = c.exitCode { info["exitCode"] = v }
        if let v = c.exitSignal { info["exitSignal"] = v }
        if let v = c.startedAt { info["startedAt"] = v }
        if let v = c.finishedAt { info["finishedAt"] = v }
        if let data = try? JSONEncoder().encode(c.options), let options = try? JSONSerialization.jsonObject(with: data) { info["config"] = options }
        if c.status == "running", let state = try? shim(c.id).call("state"), let s = state["status"] as? String { info["status"] = s }
        return info
    }

    /// 64 hex digits from the system's random source.
    static func newID() -> String {
        (UUID().uuidString + UUID().uuidString).replacingOccurrences(of: "-", with: "").lowercased()
    }

    static func validName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 128 && !name.hasPrefix(".") && !name.hasPrefix("-")
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
    }
}

extension RestartPolicy {
    static let none = try! RestartPolicy(nil)
}
