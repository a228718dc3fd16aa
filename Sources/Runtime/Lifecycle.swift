@preconcurrency import Glibc
import CLinux
import OCI

/// The verbs that act on an existing container: start, kill, delete, state and list.
public struct Lifecycle {
    public let store: StateStore
    public init(store: StateStore) { self.store = store }

    /// Lets a created container's init exec its process: open exec.fifo and read its byte.
    /// `known`: the record as `run` just created it (not read back from disk).
    public func start(_ id: String, known: ContainerRecord? = nil) throws {
        let record = try known ?? store.load(id)
        switch store.status(of: record) {
        case .created: break
        case .stopped: throw RuntimeError("cannot start a container that has stopped")
        default: throw RuntimeError("cannot start an already running container")
        }
        try Lifecycle.releaseInit(fifo: store.fifoPath(id), pid: record.initPid)
        Log.debug("start \(id): init \(record.initPid) released and exec'd")
        unlink(store.fifoPath(id))
        HookRunner.runWarning(record.config.hooks?.poststart, kind: "poststart",
                              state: HookRunner.state(record.config, id: id, status: .running, pid: record.initPid, bundle: record.bundle))
    }

    /// Reads exec.fifo's byte, then waits for EOF (the init's exec closed its end), all while
    /// watching the init through a pidfd, so a dead init is an error instead of a hang.
    static func releaseInit(fifo: String, pid: pid_t) throws {
        let fd = try check("open exec fifo") { open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC) }
        defer { close(fd) }
        let pidfd = cl_pidfd_open(pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        var released = false
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)]
        while true {
            let n = poll(&fds, pidfd >= 0 ? 2 : 1, -1)
            if n < 0 { if errno == EINTR { continue }; throw RuntimeError.sys("poll exec fifo") }
            if fds[0].revents & Int16(POLLIN | POLLHUP) != 0 {
                var byte: UInt8 = 0
                let r = read(fd, &byte, 1)
                if r == 1 { released = true; continue }
                if r == 0 && released { return }  // the writer closed: exec happened (or the init died after start)
            }
            if fds[1].revents != 0 {
                if released { return }
                throw RuntimeError("container process is already dead")
            }
        }
    }

    public func kill(_ id: String, signal: Int32, all: Bool) throws {
        let record = try store.load(id)
        let status = store.status(of: record)
        if all && status == .stopped {
            // As runc: whatever is still in the container's cgroup after its init has exited (a
            // container sharing another's pid namespace leaves such processes behind).
            if let layout = record.cgroup { for pid in Cgroup(layout: layout).pids() { Glibc.kill(pid, signal) } }
            return
        }
        guard status != .stopped else { throw RuntimeError("container not running") }
        try Lifecycle.signal(record, signal)
        if all {
            for pid in Lifecycle.processes(of: record) where pid != record.initPid { Glibc.kill(pid, signal) }
        }
    }

    /// Signals the init through a pidfd after re-checking its start time: never a recycled pid.
    static func signal(_ record: ContainerRecord, _ sig: Int32) throws {
        let pidfd = cl_pidfd_open(record.initPid)
        guard pidfd >= 0 else { throw RuntimeError("container not running") }
        defer { close(pidfd) }
        guard ProcStat(pid: record.initPid)?.startTime == record.initStartTime else {
            throw RuntimeError("container not running")
        }
        if cl_pidfd_send_signal(pidfd, sig) != 0 && errno != ESRCH { throw RuntimeError.sys("kill") }
    }

    /// Pids of the container's processes: its cgroup's, else everything in the init's pid namespace.
    static func processes(of record: ContainerRecord) -> [pid_t] {
        if let layout = record.cgroup {
            let pids = Cgroup(layout: layout).pids()
            if !pids.isEmpty { return pids }
        }
        guard let initNS = nsInode(record.initPid, "pid"), nsInode(getpid(), "pid") != initNS else {
            return [record.initPid]
        }
        return Files.list("/proc").compactMap { pid_t($0) }.filter { nsInode($0, "pid") == initNS }
    }

    static func nsInode(_ pid: pid_t, _ type: String) -> UInt? {
        var st = stat()
        return stat("/proc/\(pid)/ns/\(type)", &st) == 0 ? UInt(st.st_ino) : nil
    }

    /// Removes a stopped (or, with force, any) container. A created one is killed first, as runc does.
    /// `known`: the record `run` created and has held since (as runc's run holds its container).
    public func delete(_ id: String, force: Bool, known: ContainerRecord? = nil) throws {
        try StateStore.validate(id: id)  // before any path is built from it
        let record: ContainerRecord
        do { record = try known ?? store.load(id) } catch {
            guard force else { throw error }
            // A create that died before saving its state: its cgroup (and whatever is still in
            // it) goes with the directory.
            if Files.isDirectory(store.directory(id)) {
                store.notedCgroup(id).map { Cgroup(layout: $0).destroy() }
                store.remove(id)
            }
            return
        }
        let status = store.status(of: record)
        if status == .running || status == .paused {
            guard force else { throw RuntimeError("cannot delete container \(id) that is not stopped: \(status.rawValue)") }
        }
        if status != .stopped { try killAndWait(record) }
        if let layout = record.cgroup { Cgroup(layout: layout).destroy() }
        if !record.config.hasNewNamespace("mount") { Rootfs.unmountBelow(record.rootfs) }
        store.remove(id)
        HookRunner.runWarning(record.config.hooks?.poststop, kind: "poststop",
                              state: HookRunner.state(record.config, id: id, status: .stopped, pid: nil, bundle: record.bundle))
    }

    /// SIGKILL to every process of the container, then wait until the init is gone.
    func killAndWait(_ record: ContainerRecord) throws {
        let pidfd = cl_pidfd_open(record.initPid)
        guard pidfd >= 0 else { return }
        defer { close(pidfd) }
        guard ProcStat(pid: record.initPid)?.startTime == record.initStartTime else { return }
        for pid in Lifecycle.processes(of: record) where pid != record.initPid { Glibc.kill(pid, SIGKILL) }
        _ = cl_pidfd_send_signal(pidfd, SIGKILL)
        // Frozen tasks only die once thawed.
        if let layout = record.cgroup, Cgroup(layout: layout).isFrozen { try? Cgroup(layout: layout).setFrozen(false) }
        var p = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        while poll(&p, 1, 10_000) < 0 && errno == EINTR {}
        // Our own child (run): reap it so no zombie stays behind.
        var st: Int32 = 0
        waitpid(record.initPid, &st, WNOHANG)
    }

    /// Freezes (pause) or thaws (resume) every process of the container through its cgroup.
    public func setPaused(_ id: String, _ paused: Bool) throws {
        let record = try store.load(id)
        let status = store.status(of: record)
        if paused && status != .running { throw RuntimeError("container not running") }
        if !paused && status != .paused { throw RuntimeError("container not paused") }
        guard let layout = record.cgroup else { throw RuntimeError("container has no cgroup") }
        try Cgroup(layout: layout).setFrozen(paused)
    }

    /// runc's state document for a container.
    public func state(_ id: String) throws -> ContainerState {
        let record = try store.load(id)
        return describe(record)
    }

    public func describe(_ record: ContainerRecord) -> ContainerState {
        let status = store.status(of: record)
        return ContainerState(ociVersion: record.config.ociVersion, id: record.id,
                              pid: status == .stopped ? 0 : record.initPid, status: status.rawValue,
                              bundle: record.bundle, rootfs: record.rootfs, created: record.created,
                              annotations: record.config.annotations, owner: Lifecycle.owner(of: store.directory(record.id)))
    }

    public func list() -> [ContainerState] {
        store.ids().compactMap { try? store.load($0) }.map(describe)
    }

    /// The user name owning a state directory, from the host's /etc/passwd (no NSS in a static binary).
    static func owner(of path: String) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { return "" }
        for line in (Files.readString("/etc/passwd") ?? "").split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            if f.count > 2, UInt32(f[2]) == st.st_uid { return String(f[0]) }
        }
        return "#\(st.st_uid)"
    }
}
