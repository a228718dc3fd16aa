@preconcurrency import Glibc
import CLinux
import OCI
import Wire

/// Options of `srunc create` (and the create half of `run`).
public struct CreateOptions: Sendable {
    public var id: String
    public var bundle: String
    public var pidFile: String?
    public var consoleSocket: String?
    public var noPivot = false
    public var noNewKeyring = false
    /// `--systemd-cgroup`: cgroupsPath is "slice:prefix:name", mapped onto cgroupfs.
    public var systemdCgroup = false
    public var preserveFDs: Int32 = 0
    public init(id: String, bundle: String) { self.id = id; self.bundle = bundle }
}

/// A container whose init is blocked on exec.fifo, as the creating process sees it.
public struct CreatedContainer {
    public let record: ContainerRecord
    /// The pty master when `run` allocated the terminal itself; -1 otherwise.
    public let ptyMaster: Int32
}

/// The parent side of create: claim the id, clone the init into its namespaces, write its id
/// maps, wait for it to report ready, then persist state. On any failure nothing is left behind.
public struct Creator {
    public let store: StateStore
    public init(store: StateStore) { self.store = store }

    static let cloneFlags: [String: Int32] = [
        "pid": CL_NEWPID, "network": CL_NEWNET, "mount": CL_NEWNS,
        "ipc": CL_NEWIPC, "uts": CL_NEWUTS, "user": CL_NEWUSER,
        "cgroup": CL_NEWCGROUP,
    ]

    /// `ownTerminal`: `run` in the foreground with process.terminal and no console socket.
    public func create(_ opts: CreateOptions, ownTerminal: Bool = false) throws -> CreatedContainer {
        try StateStore.validate(id: opts.id)
        let bundle = try Bundle(path: opts.bundle)
        let spec = bundle.spec
        let terminal = spec.process?.terminal == true
        if terminal && opts.consoleSocket == nil && !ownTerminal {
            throw RuntimeError("cannot allocate tty if srunc will detach without setting console socket")
        }
        if !terminal && opts.consoleSocket != nil {
            throw RuntimeError("cannot use console socket if srunc will not allocate tty")
        }
        let namespaces = spec.linux?.namespaces ?? []
        guard namespaces.contains(where: { $0.type == "mount" && $0.path == nil }) else {
            throw RuntimeError("config.json: linux.namespaces must include a new mount namespace")
        }
        if namespaces.contains(where: { $0.type == "time" }) {
            throw RuntimeError("config.json: time namespaces are not supported")
        }
        try store.claim(opts.id)
        var fds: [Int32] = []
        var cgroup: Cgroup?
        var initPid: pid_t = 0
        var directChild = true
        do {
            defer { fds.forEach { close($0) } }
            let layout = try CgroupLayout.resolve(cgroupsPath: spec.linux?.cgroupsPath, id: opts.id, systemd: opts.systemdCgroup)
            cgroup = Cgroup(layout: layout)
            try cgroup!.create()
            try cgroup!.apply(spec.linux?.resources)
            let fifo = store.fifoPath(opts.id)
            try check("mkfifo \(fifo)") { cl_mkfifo(fifo, 0o622) }
            let rootUID = spec.linux?.uidMappings?.first { $0.containerID == 0 }?.hostID ?? 0
            let rootGID = spec.linux?.gidMappings?.first { $0.containerID == 0 }?.hostID ?? 0
            _ = chown(fifo, rootUID, rootGID)
            let fifoFD = try check("open exec fifo") { open(fifo, CL_O_PATH | O_CLOEXEC) }
            fds.append(fifoFD)
            let procFD = try check("open /proc") { open("/proc", CL_O_PATH | O_DIRECTORY | O_CLOEXEC) }
            fds.append(procFD)
            let (parentSync, childSync) = try SyncSocket.pair()
            fds.append(parentSync.fd)
            let (consoleFD, consoleListener) = try ConsoleSocket.endpoints(socketPath: opts.consoleSocket, terminal: terminal)
            if consoleFD >= 0 { fds.append(consoleFD) }
            var newFlags: Int32 = 0
            var joins: [(type: String, fd: Int32)] = []
            for ns in namespaces {
                if let path = ns.path {
                    let fd = try check("open namespace \(path)") { open(path, O_RDONLY | O_CLOEXEC) }
                    fds.append(fd)
                    joins.append((ns.type, fd))
                } else {
                    newFlags |= Creator.cloneFlags[ns.type]!
                }
            }
            joins.sort { a, _ in a.type == "user" }  // a joined user ns gives the rights to join the rest
            // The cgroup namespace is unshared by the init once it is in its cgroup, so that
            // cgroup becomes the namespace's root.
            let newCgroupNS = newFlags & CL_NEWCGROUP != 0
            newFlags &= ~CL_NEWCGROUP
            // Inside any user namespace the init may not write host cgroup files: we place it.
            let anyUserNS = newFlags & CL_NEWUSER != 0 || joins.contains { $0.type == "user" }
            let plan = InitPlan(id: opts.id, spec: spec, bundlePath: bundle.path, rootfs: bundle.rootfs, sync: childSync,
                                consoleFD: consoleFD, fifoFD: fifoFD, hostProcFD: procFD, noPivot: opts.noPivot,
                                keyring: opts.noNewKeyring ? nil : "_ses." + opts.id,
                                preserveFDs: opts.preserveFDs, parentIsCreator: joins.isEmpty, newUserNS: newFlags & CL_NEWUSER != 0,
                                waitForParent: anyUserNS, cgroupProcs: anyUserNS ? [] : cgroup!.procsFiles,
                                newCgroupNS: newCgroupNS)
            fflush(stdout); fflush(stderr)
            if joins.isEmpty {
                initPid = cl_clone(UInt(UInt32(bitPattern: newFlags)))
                if initPid == 0 { ContainerInit.run(plan) }
                if initPid < 0 { childSync.close(); throw RuntimeError.sys("clone") }
            } else {
                // setns into a pid namespace only affects children: an intermediate process
                // joins, clones the init, reports its pid and exits. We reap the init as subreaper.
                directChild = false
                _ = cl_prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
                let mid = cl_clone(0)
                if mid == 0 { Creator.joinAndClone(joins, flags: newFlags, plan: plan) }
                if mid < 0 { childSync.close(); throw RuntimeError.sys("clone") }
                var st: Int32 = 0
                waitpid(mid, &st, 0)
            }
            childSync.close()
            initPid = try Creator.handshake(parentSync, knownPid: directChild ? initPid : 0, spec: spec, id: opts.id, bundlePath: bundle.path,
                                            release: anyUserNS ? { try cgroup!.join($0) } : nil,
                                            hooks: { pid in
                // Prestart hooks see `created` (as runc gives them); createRuntime sees `creating`.
                try HookRunner.run(spec.hooks?.prestart, kind: "prestart",
                                   state: HookRunner.state(spec, id: opts.id, status: .created, pid: pid, bundle: bundle.path))
                try HookRunner.run(spec.hooks?.createRuntime, kind: "createRuntime",
                                   state: HookRunner.state(spec, id: opts.id, status: .creating, pid: pid, bundle: bundle.path))
            })
            let ptyMaster = consoleListener >= 0 ? cl_recv_fd(consoleListener) : -1
            if consoleListener >= 0 { close(consoleListener) }
            if consoleListener >= 0 && ptyMaster < 0 { throw RuntimeError.sys("receive pty master") }
            guard let stat = ProcStat(pid: initPid) else { throw RuntimeError("container init exited during create") }
            let record = ContainerRecord(id: opts.id, initPid: initPid, initStartTime: stat.startTime,
                                         bundle: bundle.path, rootfs: bundle.rootfs, created: Timestamp.now(),
                                         cgroup: layout, config: spec)
            try store.save(record)
            if let pidFile = opts.pidFile {
                try Files.writeAtomically(Files.absolute(pidFile), Array(String(initPid).utf8))
            }
            return CreatedContainer(record: record, ptyMaster: ptyMaster)
        } catch {
            if initPid > 0 {
                kill(initPid, SIGKILL)
                var st: Int32 = 0
                waitpid(initPid, &st, 0)
            }
            cgroup?.destroy()
            store.remove(opts.id)
            throw error
        }
    }

    /// Runs in the intermediate child: joins the given namespaces, clones the init, exits.
    private static func joinAndClone(_ joins: [(type: String, fd: Int32)], flags: Int32, plan: InitPlan) -> Never {
        // The type given: the kernel refuses a path to a namespace of another type.
        for j in joins where cl_setns(j.fd, Creator.cloneFlags[j.type] ?? 0) != 0 {
            plan.sync.send("error:join \(j.type) namespace: \(String(cString: strerror(errno)))")
            _exit(1)
        }
        let pid = cl_clone(UInt(UInt32(bitPattern: flags)))
        if pid == 0 { ContainerInit.run(plan) }
        plan.sync.send(pid > 0 ? "pid:\(pid)" : "error:clone: \(String(cString: strerror(errno)))")
        _exit(0)
    }

    /// Parent half of the handshake: learn the pid, write id maps, release the init, await ready.
    /// `release`: work that needs the pid before the init may go on (joining its cgroup).
    /// `hooks`: prestart and createRuntime, run when the init asks (mounts done, before pivot_root).
    private static func handshake(_ sync: SyncSocket, knownPid: pid_t, spec: Spec, id: String, bundlePath: String,
                                  release: ((pid_t) throws -> Void)?, hooks: (pid_t) throws -> Void) throws -> pid_t {
        var pid = knownPid
        func next() throws -> String {
            guard let msg = sync.receive() else { throw RuntimeError("container init exited before it was ready") }
            if msg.hasPrefix("error:") { throw RuntimeError("unable to start container process: " + msg.dropFirst(6)) }
            return msg
        }
        var ready = false, pendingHooks = false, pendingSeccompFD: Int32 = -1
        defer { if pendingSeccompFD >= 0 { close(pendingSeccompFD) } }
        // The notify fd follows a "seccomp" packet; it is passed on once the init's pid is known.
        func receiveSeccompFD() throws {
            pendingSeccompFD = cl_recv_fd(sync.fd)
            if pendingSeccompFD < 0 { throw RuntimeError.sys("receive seccomp notify fd") }
        }
        func forwardSeccompFD() throws {
            guard pendingSeccompFD >= 0, let seccomp = spec.linux?.seccomp else { return }
            try SeccompFilter.sendToListener(seccomp, fd: pendingSeccompFD,
                                             state: HookRunner.state(spec, id: id, status: .creating, pid: pid, bundle: bundlePath))
            close(pendingSeccompFD)
            pendingSeccompFD = -1
        }
        // Through an intermediate the init's "ready" may overtake the intermediate's "pid:".
        while pid == 0 {
            let msg = try next()
            if msg == "ready" { ready = true; continue }
            if msg == "hooks" { pendingHooks = true; continue }
            if msg == "seccomp" { try receiveSeccompFD(); continue }
            guard msg.hasPrefix("pid:"), let p = pid_t(msg.dropFirst(4)) else { throw RuntimeError("bad handshake: \(msg)") }
            pid = p
        }
        let newUserNS = spec.linux?.namespaces?.contains { $0.type == "user" && $0.path == nil } ?? false
        if let release {
            do { try release(pid) } catch { kill(pid, SIGKILL); throw error }
        }
        if newUserNS {
            do {
                try Files.write("/proc/\(pid)/uid_map", idMap(spec.linux?.uidMappings ?? []))
                try Files.write("/proc/\(pid)/gid_map", idMap(spec.linux?.gidMappings ?? []))
            } catch {
                kill(pid, SIGKILL)
                throw RuntimeError("write id mappings: \(error)")
            }
        }
        if release != nil { sync.send("go") }
        if pendingHooks {
            try hooks(pid)
            sync.send("resume:\(pid)")
        }
        try forwardSeccompFD()
        while !ready {
            let msg = try next()
            if msg == "hooks" {
                try hooks(pid)
                sync.send("resume:\(pid)")
                continue
            }
            if msg == "seccomp" {
                try receiveSeccompFD()
                try forwardSeccompFD()
                continue
            }
            guard msg == "ready" else { throw RuntimeError("bad handshake: \(msg)") }
            ready = true
        }
        return pid
    }

    static func idMap(_ m: [IDMapping]) -> String {
        m.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
    }
}

/// The client side of runc's --console-socket protocol: connect, then the init sends the master.
enum ConsoleSocket {
    /// The fd the process sends its pty master to, and (when srunc keeps the terminal itself,
    /// i.e. no --console-socket) the end srunc receives it on; -1 for what is not needed.
    static func endpoints(socketPath: String?, terminal: Bool) throws -> (send: Int32, receive: Int32) {
        if let socketPath { return (try connect(socketPath), -1) }
        guard terminal else { return (-1, -1) }
        var pair: [Int32] = [0, 0]
        try check("socketpair") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) }
        return (pair[1], pair[0])
    }

    static func connect(_ path: String) throws -> Int32 {
        let fd = try check("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd); throw RuntimeError("console socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if r != 0 { let e = errno; close(fd); throw RuntimeError.sys("connect console socket \(path)", e) }
        return fd
    }
}
