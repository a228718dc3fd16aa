import API
import CLinux
import Foundation
import ImageStore
import OCI
import Wire

/// Containers: create (rootfs, bundle, shim), start, the monitor that records exits and
/// applies restart policies, stop, remove, and recovery after a daemon restart.
extension Daemon {
    func row(_ ns: String, _ ref: String) throws -> Metadata.ContainerRow {
        guard let row = try metadata.container(ns, ref) else { throw APIError.notFound("no such container: \(ReferenceError.shown(ref))") }
        return row
    }

    func createContainer(_ ns: String, _ options: CreateOptions) throws -> Metadata.ContainerRow {
        try options.validate()
        let (image, imageRow) = try findImage(ns, options.image)
        let id = Daemon.newID()
        let name = options.name ?? "c-" + id.prefix(12)
        try metadata.insertContainer(ns, id: id, name: name, image: imageRow.name, manifestDigest: image.manifestDigest, options: options)
        do {
            let network = try setUpNetwork(ns, id: id, name: name, options: options, image: image.config)
            try prepareBundle(ns, id: id, image: image, options: options, network: network)
            let pid = try startShim(id: id, options: options)
            try metadata.setStatus(id, .created, pid: pid,
                                   event: EventDraft(namespace: ns, type: .container, action: .create, id: id, attributes: ["name": name, "image": imageRow.name]))
        } catch {
            teardown(id, cgroupParent: options.cgroupParent)
            logged("forget the failed container \(id)") { try metadata.removeContainer(id, event: nil) }
            throw error
        }
        return try row(ns, id)
    }

    private func prepareBundle(_ ns: String, id: String, image: StoredImage, options: CreateOptions, network: NetworkPlan) throws {
        // Under the import side of the store lock: garbage collection clears the scratch area.
        let lowers = try storeLock.withImport { try snapshots.prepare(image) }
        for dir in [containerDir(id) + "/upper", containerDir(id) + "/work", rootfsDir(id)] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        let data = "lowerdir=\(lowers.reversed().joined(separator: ":")),upperdir=\(containerDir(id))/upper,workdir=\(containerDir(id))/work"
        if config.snapshotter == "copy" || mount("overlay", rootfsDir(id), "overlay", 0, data) != 0 {
            // No overlayfs here (or asked not to use it): the rootfs is a private copy, kept on
            // disk beside the container's other data and bound where the bundle expects it.
            let copy = containerDir(id) + "/upper"
            do { try snapshots.materialize(image, into: copy) } catch { throw APIError.internal("copy rootfs: \(error)") }
            if mount(copy, rootfsDir(id), nil, UInt(MS_BIND), nil) != 0 {
                throw APIError.internal("bind rootfs: \(String(cString: strerror(errno)))")
            }
        }
        var mounts: [(String, String, Bool)] = []
        for text in options.volumes ?? [] {
            let v = try VolumeSpec(parsing: text)
            if v.isBind {
                // As docker's -v: a missing host directory is made.
                if !FileManager.default.fileExists(atPath: v.source) {
                    do { try FileManager.default.createDirectory(atPath: v.source, withIntermediateDirectories: true) } catch {
                        throw APIError.params("volumes: bind source \(v.source) cannot be created: \(error)")
                    }
                }
                mounts.append((v.source, v.destination, v.readOnly))
            } else {
                try ensureVolume(ns, v.source)
                mounts.append((volumeDir(ns, v.source), v.destination, v.readOnly))
            }
        }
        let taken = Set(mounts.map(\.1))
        for (n, destination) in (image.config.config?.Volumes ?? [:]).keys.sorted().enumerated() where !taken.contains(destination) {
            let dir = containerDir(id) + "/volumes/\(n)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            mounts.append((dir, destination, false))
        }
        if options.`init` == true {
            guard let binary = config.initBinary else { throw APIError.precondition("init: no init binary here (tini-static or catatonit)") }
            mounts.append((binary, BundleBuilder.initPath, true))
        }
        let spec = try BundleBuilder(options: options, image: image.config, id: id, rootfs: rootfsDir(id), mounts: mounts, network: network).spec()
        try writeBundleConfig(spec, id: id)
    }

    /// The bundle's config.json, replaced whole (a temporary name, then rename) and not synced:
    /// the bundle lives under the state directory, which a host crash empties along with the
    /// processes it describes, while Foundation's write syncs every time (1-18 ms a create here).
    func writeBundleConfig(_ spec: Spec, id: String) throws {
        let data = try JSONEncoder().encode(spec)
        let path = bundleDir(id) + "/config.json", temporary = path + ".new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw APIError.internal("bundle config \(temporary): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == data.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw APIError.internal("bundle config \(path): \(String(cString: strerror(errno)))")
        }
    }

    private func startShim(id: String, options: CreateOptions) throws -> Int {
        var args = ["--id", id, "--bundle", bundleDir(id), "--state-dir", shim(id).stateDir, "--log", logPath(id),
                    "--runtime", config.runtime, "--runtime-root", config.state + "/runtime",
                    "--log-max-size", "100m", "--log-max-files", "3"]
        if options.tty == true { args.append("--terminal") }
        if options.stdin == true { args.append("--stdin") }
        return try ShimLink.start(binary: config.shim, arguments: args)
    }

    /// A created container starts; an exited one runs again: a new shim and init in the same
    /// rootfs (its changes kept), appending to the same log.
    func startContainer(_ c: Metadata.ContainerRow) throws {
        switch c.status {
        case .created:
            // A start that fails leaves no network behind (a later start is refused the same way).
            do { try shim(c.id).call("start") } catch { tearDownNetwork(c.id); throw error }
            try metadata.setStatus(c.id, .running, started: true, event: EventDraft(namespace: c.namespace, type: .container, action: .start, id: c.id, attributes: ["name": c.name]))
            monitor(c.id)
        case .exited:
            try runAgain(c, event: EventDraft(namespace: c.namespace, type: .container, action: .start, id: c.id, attributes: ["name": c.name]))
        default:
            throw APIError.precondition("container \(c.name) is \(c.status.rawValue)")
        }
    }

    /// Waits (on its own thread) for the container's exit, records it with its `die` event,
    /// then applies auto-remove or the restart policy.
    func monitor(_ id: String) {
        lock.lock()
        let fresh = monitored.insert(id).inserted
        lock.unlock()
        guard fresh else { return }
        watchHealth(id, pid: (try? metadata.container(id: id))?.pid)
        Thread.detachNewThread { [self] in
            let (exit, lost) = waitThroughShim(id)
            lock.lock()
            monitored.remove(id)
            let deliberate = stopping.contains(id)
            lock.unlock()
            let row: Metadata.ContainerRow?
            do { row = try metadata.container(id: id) } catch { log.error("container \(id) exited, but its record is unreadable: \(error)"); return }
            guard let c = row else { return }
            let status = exit
            let policy = c.options.restart ?? RestartPolicy(name: .no)
            let again = !deliberate && c.options.autoRemove != true && policy.restarts(exitCode: status.code, count: c.restartCount)
            guard recordExit(c, status, restarted: again, lost: lost) else { return }
            tearDownNetwork(id)
            if c.options.autoRemove == true && !deliberate {
                logged("auto-remove \(id)") { try removeContainer(c, force: true) }
            } else if again {
                backoff(id, seconds: RestartPolicy.backoff(afterRestarts: c.restartCount))
                restartUnlessCancelled(id)
            }
        }
    }

    /// Records an exit with its `die` event, trying again while the store cannot take it (a
    /// full disk): the exit is never dropped. False if the container was removed meanwhile.
    private func recordExit(_ c: Metadata.ContainerRow, _ status: ExitStatus, restarted: Bool, lost: String?) -> Bool {
        var failures = 0
        while true {
            do {
                try metadata.setExited(c.id, status, restarted: restarted, error: lost, event: dieEvent(c, status, error: lost))
                return true
            } catch {
                if failures == 0 { log.error("record the exit of \(c.id): \(error); trying again every second") }
                failures += 1
                guard (try? metadata.container(id: c.id)) != nil else { return false }
                sleep(1)
            }
        }
    }

    /// The container's exit as its shim reports it. The `wait` connection hangs up the moment
    /// the shim dies; a shim that is gone with no exit record has left its container with no
    /// one to hold its stdio or reap it: the runtime kills it, and it is reported lost.
    private func waitThroughShim(_ id: String) -> (ExitStatus, lost: String?) {
        let link = shim(id)
        while true {
            do {
                if let exit = ShimLink.exitStatus(try link.call("wait")) { return (exit, nil) }
            } catch {
                log.debug("wait for \(id): \(error)")
            }
            if let exit = link.exitRecord() { return (exit, nil) }
            guard link.isAlive else { break }
            usleep(100_000)  // alive but not answering `wait` (out of fds?): ask again shortly
        }
        let lost = "the shim died before the container; the container was killed"
        log.error("container \(id): \(lost)")
        forceDeleteInRuntime(id)
        return (link.exitRecord() ?? ExitStatus(code: 255, signal: nil, oomKilled: false, time: Timestamp.now()), lost)
    }

    func dieEvent(_ c: Metadata.ContainerRow, _ exit: ExitStatus, error: String? = nil) -> EventDraft {
        var attributes = ["name": c.name, "exitCode": String(exit.code)]
        if let error { attributes["error"] = error }
        return EventDraft(namespace: c.namespace, type: .container, action: .die, id: c.id, attributes: attributes, exit: exit)
    }

    /// The runtime's `delete --force`: kills what is left of the container and removes its
    /// runtime state and cgroup (for when its shim cannot).
    func forceDeleteInRuntime(_ id: String) {
        logged("runtime delete --force \(id)") {
            let out = try execute(config.runtime, ["--root", config.state + "/runtime", "delete", "--force", id])
            if out.code != 0 && !out.stderr.contains("does not exist") { log.warning("runtime delete \(id): \(out.stderr)") }
        }
    }

    /// Sleeps the restart backoff, in short steps so that a cancel ends it at once.
    private func backoff(_ id: String, seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        while deadline.timeIntervalSinceNow > 0 {
            lock.lock(); let cancelled = cancelledRestarts.contains(id); lock.unlock()
            if cancelled { return }
            usleep(useconds_t(min(deadline.timeIntervalSinceNow, 0.05) * 1_000_000))
        }
    }

    /// The restart policy's next run, unless a stop or remove cancelled it during the backoff
    /// (then, or if the run cannot start, the container is recorded exited).
    private func restartUnlessCancelled(_ id: String) {
        lock.lock()
        let cancelled = cancelledRestarts.remove(id) != nil
        lock.unlock()
        guard let c = try? metadata.container(id: id), c.status == .restarting else { return }
        do {
            guard !cancelled else { throw APIError.precondition("cancelled") }
            try runAgain(c, event: EventDraft(namespace: c.namespace, type: .container, action: .restart, id: id,
                                              attributes: ["name": c.name, "restartCount": String(c.restartCount)]))
        } catch {
            if !cancelled { log.error("restart \(id): \(error)") }
            logged("record \(id) exited") { try metadata.setStatus(id, .exited, event: nil) }
        }
    }

    /// A new run of an exited container: same rootfs and config, a new shim and init, its
    /// network set up again.
    private func runAgain(_ c: Metadata.ContainerRow, event: EventDraft) throws {
        logged("delete the last run of \(c.id)") { try shim(c.id).call("delete", .object([("force", .bool(true))])) }
        try renewNetwork(c)
        let pid: Int
        do {
            pid = try startShim(id: c.id, options: c.options)
            try shim(c.id).call("start")
        } catch {
            tearDownNetwork(c.id)
            throw error
        }
        try metadata.setStatus(c.id, .running, pid: pid, started: true, event: event)
        monitor(c.id)
    }

    /// Stops a restart policy's pending run and waits until the monitor has either recorded the
    /// container exited or already started the run; the row as it is then.
    private func cancelRestart(_ c: Metadata.ContainerRow) throws -> Metadata.ContainerRow {
        lock.lock()
        cancelledRestarts.insert(c.id)
        lock.unlock()
        var seen = events.currentGeneration
        while let now = try metadata.container(id: c.id), now.status == .restarting {
            seen = events.waitForEvents(after: seen, timeout: 0.05)
        }
        lock.lock()
        cancelledRestarts.remove(c.id)  // unused if the run had already begun
        lock.unlock()
        return try metadata.container(id: c.id) ?? c
    }

    /// The stop signal (the image's StopSignal, default SIGTERM), then SIGKILL after `timeout` seconds.
    func stopContainer(_ row: Metadata.ContainerRow, timeout: Double) throws {
        let c = row.status == .restarting ? try cancelRestart(row) : row
        guard c.status.isLive else { return }
        let signal = (try? storedImage(manifestDigest: c.manifestDigest, name: nil))?.config.config?.StopSignal ?? "SIGTERM"
        markStopping(c.id, true)
        defer { markStopping(c.id, false) }
        if c.status == .paused { logged("resume \(c.id) to stop it") { try shim(c.id).call("resume") } }
        logged("send \(signal) to \(c.id)") { try shim(c.id).call("kill", .object([("signal", .string(signal))])) }
        if !waitForExit(c.id, seconds: timeout) {
            logged("SIGKILL \(c.id)") { try shim(c.id).call("kill", .object([("signal", .string("SIGKILL")), ("all", .bool(true))])) }
            if !waitForExit(c.id, seconds: 10) { throw APIError(.runtimeError, "container \(c.name) did not exit after SIGKILL") }
        }
    }

    private func markStopping(_ id: String, _ on: Bool) {
        lock.lock(); defer { lock.unlock() }
        if on { stopping.insert(id) } else { stopping.remove(id) }
    }

    /// Waits until the monitor has recorded the exit (woken by the events it commits).
    func waitForExit(_ id: String, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var seen = events.currentGeneration
        while true {
            if let c = try? metadata.container(id: id), c.status == .exited {
                lock.lock(); let watching = monitored.contains(id); lock.unlock()
                if !watching { return true }
            } else if (try? metadata.container(id: id)) == nil {
                return true
            }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return false }
            seen = events.waitForEvents(after: seen, timeout: min(left, 0.05))
        }
    }

    func removeContainer(_ row: Metadata.ContainerRow, force: Bool) throws {
        guard lock.withLock({ removing.insert(row.id).inserted }) else {
            var seen = events.currentGeneration
            while try metadata.container(id: row.id) != nil && lock.withLock({ removing.contains(row.id) }) {
                seen = events.waitForEvents(after: seen, timeout: 0.05)
            }
            // The other remove failed (or the container is gone): try in our own right.
            if let now = try metadata.container(id: row.id) { try removeContainer(now, force: force) }
            return
        }
        defer { lock.withLock { _ = removing.remove(row.id) } }
        let c = row.status == .restarting ? try cancelRestart(row) : row
        // Live by the record but exited by the shim's: its exit is not recorded yet (the store
        // may be full); there is nothing to stop.
        if c.status.isLive && shim(c.id).exitRecord() == nil {
            guard force else { throw APIError.conflict("container \(c.name) is \(c.status.rawValue): stop it first or force") }
            try stopContainer(c, timeout: 0)
        }
        markStopping(c.id, true)
        defer { markStopping(c.id, false) }
        if FileManager.default.fileExists(atPath: shim(c.id).socketPath) {
            logged("delete \(c.id) through its shim") { try shim(c.id).call("delete", .object([("force", .bool(true))])) }
        }
        teardown(c.id, cgroupParent: c.options.cgroupParent)
        setHealth(c.id, nil)
        try metadata.removeContainer(c.id, event: EventDraft(namespace: c.namespace, type: .container, action: .destroy, id: c.id, attributes: ["name": c.name]))
        lock.withLock { _ = networkLocks.removeValue(forKey: c.id) }
    }

    /// Unmounts and removes a container's directories. With no shim left to do it, the
    /// runtime's delete runs here; and whatever a runtime killed mid-create left (its state
    /// directory, the container's cgroups) goes too: no runtime state or cgroup outlives the
    /// container.
    func teardown(_ id: String, cgroupParent: String?) {
        let runtimeState = config.state + "/runtime/" + id
        // With no state left the runtime's delete would only say "does not exist" (the shim's
        // delete ran): 5-7 ms a `run --rm` saved.
        if !shim(id).isAlive && FileManager.default.fileExists(atPath: runtimeState) { forceDeleteInRuntime(id) }
        tearDownNetwork(id)
        let undeleted = cni.cached(id)
        if !undeleted.isEmpty { log.warning("container \(id): giving up network attachments whose DEL failed: \(undeleted.map(\.network))") }
        cni.forget(id)
        if FileManager.default.fileExists(atPath: runtimeState) {
            log.warning("container \(id): the runtime left its state; removing it")
            logged("remove \(runtimeState)") { try FileManager.default.removeItem(atPath: runtimeState) }
        }
        for left in CgroupCleanup.remove((cgroupParent ?? "/scontainerd") + "/" + id) { log.warning("container \(id): could not remove the cgroup \(left)") }
        if umount2(rootfsDir(id), Int32(MNT_DETACH)) != 0 && errno != EINVAL && errno != ENOENT {
            log.warning("unmount \(rootfsDir(id)): \(String(cString: strerror(errno)))")
        }
        for dir in [bundleDir(id), containerDir(id), shim(id).stateDir] where FileManager.default.fileExists(atPath: dir) {
            logged("remove \(dir)") { try FileManager.default.removeItem(atPath: dir) }
        }
    }

    /// After a restart of the daemon: reconnect to the shims of containers that were running,
    /// and record the exits (with their `die` events) of those that ended meanwhile.
    public func recover() {
        ensureNetworks()
        let all: [Metadata.ContainerRow]
        do { all = try metadata.containers(nil) } catch { log.error("recovery: cannot read containers: \(error)"); return }
        for c in all {
            switch c.status {
            case .running, .paused:
                // The monitor records the exit, whether it is still to come, already in the
                // shim's exit record, or lost with the shim.
                reclaimPorts(c.id)
                checkNetwork(c.id)
                monitor(c.id)
            case .exited, .restarting:
                // Exited while the daemon was down: its network goes now.
                tearDownNetwork(c.id)
            case .creating:
                // The create was cut short: its shim (if it got that far) ends the container.
                log.info("recovery: removing half-created container \(c.id)")
                if shim(c.id).isAlive { logged("delete \(c.id) through its shim") { try shim(c.id).call("delete", .object([("force", .bool(true))])) } }
                forceDeleteInRuntime(c.id)
                teardown(c.id, cgroupParent: c.options.cgroupParent)
                logged("recovery: forget \(c.id)") { try metadata.removeContainer(c.id, event: nil) }
            default: break
            }
        }
    }

    /// A container as inspect and list show it. `live`: ask its shim for the runtime's status
    /// (a pause made behind the daemon's back); inspect does, list does not: that question runs
    /// the runtime, ~5 ms a container, which made `ps` with 500 containers take 2.7 s. The
    /// record is kept current by the daemon's own pause, resume and exit monitor.
    func info(_ c: Metadata.ContainerRow, live: Bool = true) -> ContainerInfo {
        var status = c.status
        if live, status == .running, let state = try? shim(c.id).call("state"), let s = state["status"]?.string, let live = ContainerStatus(rawValue: s) { status = live }
        var info = ContainerInfo(id: c.id, name: c.name, namespace: c.namespace, image: c.image, imageDigest: c.manifestDigest, status: status,
                                 pid: c.pid, exitCode: c.exitCode, exitSignal: c.exitSignal, oomKilled: c.oomKilled, restartCount: c.restartCount,
                                 created: c.created, startedAt: c.startedAt, finishedAt: c.finishedAt, logPath: logPath(c.id),
                                 bundle: bundleDir(c.id), labels: c.options.labels ?? [:], config: c.options)
        info.error = c.error
        info.health = healthInfo(c.id)
        info.network = networkSettings(c)
        return info
    }
}
