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
    /// Run by (or as if by) an unprivileged user: no cgroup where none may be written.
    public var rootless = false
    public init(id: String, bundle: String) { self.id = id; self.bundle = bundle }
}

/// A container whose init is blocked on exec.fifo, as the creating process sees it.
public struct CreatedContainer {
    public let record: ContainerRecord
    /// The pty master when `run` allocated the terminal itself; -1 otherwise.
    public let ptyMaster: Int32
}

/// The parent side of create, in its steps: check the config, claim the id, make the cgroup,
/// spawn the init, answer its handshake, persist the state. On any failure nothing is left
/// behind; if srunc itself dies midway, the init sees EOF on its sync socket and exits, and
/// `delete --force` finds the cgroup through the claim note.
public struct Creator {
    public let store: StateStore
    public init(store: StateStore) { self.store = store }

    /// `ownTerminal`: `run` in the foreground with process.terminal and no console socket.
    public func create(_ opts: CreateOptions, ownTerminal: Bool = false) throws -> CreatedContainer {
        try StateStore.validate(id: opts.id)
        let bundle = try Bundle(path: opts.bundle)
        try Creator.validate(bundle.spec, opts, ownTerminal: ownTerminal)
        try store.claim(opts.id)
        Log.debug("create \(opts.id): claimed, bundle \(bundle.path)")
        var attempt = Attempt()
        if !bundle.spec.hasNewNamespace("mount") { attempt.sharedMountRootfs = bundle.rootfs }
        do {
            defer { attempt.closeFDs() }
            let cgroup = try makeCgroup(opts, bundle.spec)
            attempt.cgroup = cgroup
            let launch = try spawn(opts, bundle, cgroup: cgroup, attempt: &attempt)
            let pid = try handshake(launch, opts: opts, bundle: bundle, attempt: &attempt)
            let ptyMaster = try receivePty(launch.consoleListener)
            Log.debug("create \(opts.id): init \(pid) ready")
            let record = try persist(opts, bundle, pid: pid, layout: cgroup?.layout)
            try Creator.confirm(launch.sync)
            Log.debug("create \(opts.id): state saved, init \(pid) waits for start")
            return CreatedContainer(record: record, ptyMaster: ptyMaster)
        } catch {
            Log.debug("create \(opts.id): failed, undoing: \(error)")
            attempt.undo()
            store.remove(opts.id)
            throw error
        }
    }

    /// The container's cgroup, made and limited. Rootless, where the user may not write the
    /// hierarchy, there is none (nil), unless limits were asked for: those cannot be kept.
    private func makeCgroup(_ opts: CreateOptions, _ spec: Spec) throws -> Cgroup? {
        let layout = try CgroupLayout.resolve(cgroupsPath: spec.linux?.cgroupsPath, id: opts.id, systemd: opts.systemdCgroup)
        let cgroup = Cgroup(layout: layout)
        do {
            try store.noteCgroup(opts.id, layout)
            try cgroup.create()
        } catch let e as RuntimeError where opts.rootless && (e.errno == EACCES || e.errno == EPERM || e.errno == EROFS) {
            cgroup.removeEmpty()  // the hierarchies that were writable, if some were
            guard !(spec.linux?.resources?.setsLimits ?? false) else {
                throw RuntimeError("rootless container: resource limits need a cgroup delegated to this user (\(e.message))")
            }
            Log.debug("create \(opts.id): rootless, no cgroup (\(e.message))")
            return nil
        }
        // Our init would freeze on entering it and create would hang: runc's words.
        if cgroup.isFrozen { cgroup.removeEmpty(); throw RuntimeError("container's cgroup unexpectedly frozen") }
        do { try cgroup.apply(spec.linux?.resources) } catch { cgroup.destroy(); throw error }
        Log.debug("create \(opts.id): cgroup \(layout.dirs.first?.path ?? "")")
        return cgroup
    }

    /// What a failed create must undo: the init (killed and reaped), the cgroup, open fds.
    struct Attempt {
        var initPid: pid_t = 0
        var cgroup: Cgroup?
        var fds: [Int32] = []

        mutating func closeFDs() { fds.forEach { close($0) }; fds = [] }

        /// The rootfs whose mounts are the caller's to undo (a config without a mount namespace).
        var sharedMountRootfs: String?

        func undo() {
            if initPid > 0 {
                kill(initPid, SIGKILL)
                var st: Int32 = 0
                waitpid(initPid, &st, 0)
            }
            cgroup?.destroy()
            sharedMountRootfs.map(Rootfs.unmountBelow)
        }
    }

    /// The init as spawned: srunc's end of the sync socket, its pid when srunc cloned it itself,
    /// and where the pty master arrives when srunc keeps the terminal.
    struct Launch {
        let sync: SyncSocket
        let knownPid: pid_t?
        let consoleListener: Int32
        /// In a user namespace the init cannot enter host cgroups: srunc places it, then says `go`.
        let placedBySrunc: Bool
        /// clone3 put the init in the cgroup2 directory already.
        let bornInUnified: Bool
    }

    /// What the config asks that srunc cannot do, refused before anything is made.
    static func validate(_ spec: Spec, _ opts: CreateOptions, ownTerminal: Bool) throws {
        let terminal = spec.process?.terminal == true
        if terminal && opts.consoleSocket == nil && !ownTerminal {
            throw RuntimeError("cannot allocate tty if srunc will detach without setting console socket")
        }
        if !terminal && opts.consoleSocket != nil {
            throw RuntimeError("cannot use console socket if srunc will not allocate tty")
        }
        try TimeNamespace.validate(spec)
        for m in spec.mounts ?? [] { _ = try IdmappedMount(m, spec: spec) }
        if !spec.hasNewNamespace("mount") {
            // Masking or a read-only root would change the caller's own mounts; runc's words.
            if !(spec.linux?.maskedPaths ?? []).isEmpty || !(spec.linux?.readonlyPaths ?? []).isEmpty {
                throw RuntimeError("unable to restrict sys entries without a private MNT namespace")
            }
            if spec.root?.readonly == true {
                throw RuntimeError("config.json: root.readonly needs a new mount namespace")
            }
        }
    }

    /// Opens what the init needs from the host, then clones it (through an intermediate when
    /// namespaces are joined by path).
    private func spawn(_ opts: CreateOptions, _ bundle: Bundle, cgroup: Cgroup?, attempt: inout Attempt) throws -> Launch {
        let spec = bundle.spec
        let fifo = store.fifoPath(opts.id)
        try check("mkfifo \(fifo)") { cl_mkfifo(fifo, 0o622) }
        let rootUID = spec.linux?.uidMappings?.first { $0.containerID == 0 }?.hostID ?? 0
        let rootGID = spec.linux?.gidMappings?.first { $0.containerID == 0 }?.hostID ?? 0
        _ = chown(fifo, rootUID, rootGID)
        let fifoFD = try check("open exec fifo") { open(fifo, CL_O_PATH | O_CLOEXEC) }
        attempt.fds.append(fifoFD)
        let procFD = try check("open /proc") { open("/proc", CL_O_PATH | O_DIRECTORY | O_CLOEXEC) }
        attempt.fds.append(procFD)
        let (parentSync, childSync) = try SyncSocket.pair()
        attempt.fds.append(parentSync.fd)
        defer { childSync.close() }
        let (consoleFD, consoleListener) = try ConsoleSocket.endpoints(socketPath: opts.consoleSocket, terminal: spec.process?.terminal == true)
        if consoleFD >= 0 { attempt.fds.append(consoleFD) }
        if consoleListener >= 0 { attempt.fds.append(consoleListener) }
        let (joins, cloneFlags) = try namespaces(spec, attempt: &attempt)
        // The cgroup namespace is unshared by the init once it is in its cgroup, so that
        // cgroup becomes the namespace's root.
        let newCgroupNS = cloneFlags & CL_NEWCGROUP != 0
        let anyUserNS = cloneFlags & CL_NEWUSER != 0 || joins.contains { $0.type == "user" }
        var plan = InitPlan(id: opts.id, spec: spec, bundlePath: bundle.path, rootfs: bundle.rootfs, sync: childSync,
                            consoleFD: consoleFD, fifoFD: fifoFD, hostProcFD: procFD, noPivot: opts.noPivot,
                            keyring: opts.noNewKeyring ? nil : "_ses." + opts.id,
                            preserveFDs: opts.preserveFDs, parentIsCreator: joins.isEmpty, newUserNS: cloneFlags & CL_NEWUSER != 0,
                            waitForParent: anyUserNS, cgroupProcs: [],
                            newCgroupNS: newCgroupNS)
        plan.seccomp = try spec.linux?.seccomp.map { try SeccompProgram.prepare($0, cacheDir: store.seccompCache) }
        // Unprivileged, srunc may not clone mounts; the init binds what the user can reach itself.
        plan.bindSources = try openBindSources(spec, bundle: bundle.path, all: anyUserNS && geteuid() == 0, attempt: &attempt)
        // The init is born in the cgroup2 directory and writes itself into the v1 ones.
        let placement = try cgroup?.selfPlacement() ?? CgroupPlacement()
        let cgroupFD = try placement.openUnified()
        if cgroupFD >= 0 { attempt.fds.append(cgroupFD) }
        if !anyUserNS { plan.cgroupProcs = placement.tasksFiles }
        let unifiedProcs = placement.unifiedDir.map { $0 + "/cgroup.procs" }
        let (pid, born) = try Spawn.start(joins: joins, flags: cloneFlags & ~CL_NEWCGROUP, cgroupFD: cgroupFD, sync: childSync,
                                          parentEnd: parentSync) { born in
            var plan = plan
            if !born && !plan.waitForParent, let unifiedProcs { plan.cgroupProcs.append(unifiedProcs) }
            ContainerInit.run(plan)
        }
        attempt.initPid = pid ?? 0
        let placed = !(born && placement.tasksFiles.isEmpty)
        return Launch(sync: parentSync, knownPid: pid, consoleListener: consoleListener, placedBySrunc: anyUserNS && placed,
                      bornInUnified: born && placement.unifiedDir != nil)
    }

    /// Bind-mount sources cloned now as detached trees, with srunc's rights: inside its user
    /// namespace the init may not reach a root-only source (runc opens them before, too; a
    /// plain fd would not do, its mount being in the host's namespace, not the init's).
    /// Idmapped mounts are always made here (idmapping needs a detached tree); the others only
    /// when `all`.
    private func openBindSources(_ spec: Spec, bundle: String, all: Bool, attempt: inout Attempt) throws -> [Int: Int32] {
        var fds: [Int: Int32] = [:]
        for (i, m) in (spec.mounts ?? []).enumerated() where MountOptions(m.options ?? []).isBind || m.type == "bind" {
            let idmap = try IdmappedMount(m, spec: spec)
            guard all || idmap != nil, let source = m.source, !source.isEmpty else { continue }
            let path = source.hasPrefix("/") ? source : bundle + "/" + source
            let recursive = MountOptions(m.options ?? []).flags & UInt(MS_REC) != 0
            let fd = try check("bind mount source \(source)") { cl_open_tree_clone(path, recursive ? 1 : 0) }
            attempt.fds.append(fd)
            try idmap?.apply(to: fd, destination: m.destination)
            fds[i] = fd
        }
        return fds
    }

    /// Namespaces joined by path (opened now, on the host) and the clone flags of the new ones.
    private func namespaces(_ spec: Spec, attempt: inout Attempt) throws -> ([NamespaceJoin], Int32) {
        var joins: [NamespaceJoin] = []
        var flags: Int32 = 0
        for ns in spec.linux?.namespaces ?? [] {
            if let path = ns.path {
                let fd = try check("open namespace \(path)") { open(path, O_RDONLY | O_CLOEXEC) }
                attempt.fds.append(fd)
                joins.append(NamespaceJoin(type: ns.type, fd: fd))
            } else if ns.type != "time" {  // the init makes it: see TimeNamespace
                flags |= NamespaceJoin.flags[ns.type] ?? 0
            }
        }
        return (joins, flags)
    }

    /// Answers the init until it is ready: learn its pid, place it in its cgroup and write its
    /// id maps (user namespace), run prestart/createRuntime hooks when it asks, and pass a
    /// seccomp notify fd to the listener. Through an intermediate the init's messages may
    /// overtake the intermediate's `.pid`; what needs the pid waits for it.
    private func handshake(_ launch: Launch, opts: CreateOptions, bundle: Bundle, attempt: inout Attempt) throws -> pid_t {
        let spec = bundle.spec
        var pid = launch.knownPid
        var ready = false, hooksAsked = false, released = false
        var seccomp = SeccompHandoff()
        defer { seccomp.discard() }
        func state(_ status: ContainerStatus) -> (pid_t) -> HookState {
            { HookState(ociVersion: spec.ociVersion, id: opts.id, status: status.rawValue, pid: $0, bundle: bundle.path, annotations: spec.annotations) }
        }
        while true {
            if let pid, !released {
                released = true
                attempt.initPid = pid
                try release(pid, launch, spec: spec, cgroup: attempt.cgroup)
            }
            if let pid, hooksAsked {
                hooksAsked = false
                // Prestart hooks see `created` (as the spec says); createRuntime sees `creating`.
                try HookRunner.run(spec.hooks?.prestart, kind: "prestart", state: state(.created)(pid))
                try HookRunner.run(spec.hooks?.createRuntime, kind: "createRuntime", state: state(.creating)(pid))
                launch.sync.send(.resume(pid))
            }
            try seccomp.forward(spec.linux?.seccomp, pid: pid, state: state(.creating))
            if ready, let pid { return pid }
            switch try launch.sync.receive() {
            case nil: throw RuntimeError("container init exited before it was ready")
            case .error(let text): throw RuntimeError("unable to start container process: " + text)
            case .pid(let p) where pid == nil: pid = p
            case .hooks: hooksAsked = true
            case .seccomp: try seccomp.receive(on: launch.sync)
            case .ready: ready = true
            case let other?: throw RuntimeError("bad handshake message: \(other.encoded)")
            }
        }
    }

    /// Work that needs the init's pid before it may go on: cgroup placement and id maps.
    private func release(_ pid: pid_t, _ launch: Launch, spec: Spec, cgroup: Cgroup?) throws {
        if launch.placedBySrunc { try cgroup?.join(pid, bornInUnified: launch.bornInUnified) }
        if spec.hasNewNamespace("user") {
            do {
                try Rootless.writeIDMaps(pid: pid, uid: spec.linux?.uidMappings ?? [], gid: spec.linux?.gidMappings ?? [])
            } catch {
                throw RuntimeError("write id mappings: \(error)")
            }
        }
        if launch.placedBySrunc { launch.sync.send(.go) }
    }

    private func receivePty(_ listener: Int32) throws -> Int32 {
        guard listener >= 0 else { return -1 }
        let master = cl_recv_fd(listener)
        if master < 0 { throw RuntimeError.sys("receive pty master") }
        return master
    }

    /// state.json, then --pid-file: from here on the container exists for every other verb.
    private func persist(_ opts: CreateOptions, _ bundle: Bundle, pid: pid_t, layout: CgroupLayout?) throws -> ContainerRecord {
        guard let stat = ProcStat(pid: pid) else { throw RuntimeError("container init exited during create") }
        let record = ContainerRecord(id: opts.id, initPid: pid, initStartTime: stat.startTime,
                                     bundle: bundle.path, rootfs: bundle.rootfs, created: Timestamp.now(),
                                     cgroup: layout, config: bundle.spec)
        try store.saveCreated(record, configBytes: bundle.configBytes)
        if let pidFile = opts.pidFile {
            try Files.writeAtomically(Files.absolute(pidFile), Array(String(pid).utf8))
        }
        return record
    }

    /// Tells the init its state is saved and waits until it has dropped its parent-death signal
    /// (it closes the socket): only then may srunc exit without taking the container with it.
    private static func confirm(_ sync: SyncSocket) throws {
        sync.send(.persisted)
        while let message = try sync.receive() {
            if case .error(let text) = message { throw RuntimeError("unable to start container process: " + text) }
        }
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
        if r != 0 { let e = errno; close(fd); throw RuntimeError.sys("dial unix \(path): connect", e) }
        return fd
    }
}
