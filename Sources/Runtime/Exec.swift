@preconcurrency import Glibc
import CLinux
import OCI

/// Options of `srunc exec`.
public struct ExecOptions: Sendable {
    public var id: String
    public var process: Process
    public var detach = false
    public var pidFile: String?
    public var consoleSocket: String?
    public var preserveFDs: Int32 = 0
    public var ignorePaused = false
    /// `--cgroup`: sub-cgroups of the container's to run the process in.
    public var subCgroups: [String] = []
    public init(id: String, process: Process) { self.id = id; self.process = process }
}

/// Runs another process in a live container: an intermediate child joins the container's
/// cgroup and then its namespaces (user first), clones the process into the pid namespace and
/// exits; srunc, as subreaper, then waits for it (or returns at once with --detach).
public struct Executor {
    public let store: StateStore
    public init(store: StateStore) { self.store = store }

    /// The base process for `exec ARGS`: the container's own process with its env, user, caps.
    public static func baseProcess(_ record: ContainerRecord) -> Process {
        record.config.process ?? Process(args: nil)
    }

    /// `known`: the record the caller read already (state.json is read and decoded once).
    public func exec(_ opts: ExecOptions, known: ContainerRecord? = nil) throws -> Int32 {
        let record = try known ?? store.load(opts.id)
        switch store.status(of: record) {
        // A created container's namespaces exist already: runc lets a process join them.
        case .running, .created: break
        case .paused where opts.ignorePaused: break
        case .paused: throw RuntimeError("cannot exec in a paused container (use --ignore-paused to override)")
        default: throw RuntimeError("cannot exec in a \(store.status(of: record).rawValue) container")
        }
        let process = opts.process
        guard let args = process.args, !args.isEmpty else { throw RuntimeError("exec: process.args must not be empty") }
        let terminal = process.terminal == true
        if terminal && opts.detach && opts.consoleSocket == nil {
            throw RuntimeError("cannot allocate tty if srunc will detach without setting console socket")
        }
        if !terminal && opts.consoleSocket != nil { throw RuntimeError("cannot use console socket if srunc will not allocate tty") }
        try Capabilities.validate(process.capabilities)
        var fds: [Int32] = []
        defer { fds.forEach { close($0) } }
        // As the init: born in the cgroup2 directory, "0" into each v1 hierarchy's tasks.
        let placement = try record.cgroup.map { try Cgroup(layout: $0).selfPlacement(sub: opts.subCgroups) } ?? CgroupPlacement()
        let cgroupProcs = placement.tasksFiles
        let cgroupFD = try placement.openUnified()
        if cgroupFD >= 0 { fds.append(cgroupFD) }
        let joins = try Executor.namespaces(of: record, fds: &fds)
        guard ProcStat(pid: record.initPid)?.startTime == record.initStartTime else { throw RuntimeError("container not running") }
        let (parentSync, childSync) = try SyncSocket.pair()
        fds.append(parentSync.fd)
        let (consoleFD, consoleListener) = try ConsoleSocket.endpoints(socketPath: opts.consoleSocket, terminal: terminal)
        if consoleFD >= 0 { fds.append(consoleFD) }
        let inUserNS = joins.contains { $0.type == "user" } || Rootless.inUserNamespace
        let seccomp = try record.config.linux?.seccomp.map { try SeccompProgram.prepare($0, cacheDir: store.seccompCache) }
        defer { childSync.close() }
        _ = try Spawn.start(joins: joins, flags: 0, cgroupFD: cgroupFD, sync: childSync, parentEnd: parentSync, inIntermediate: {
            // Non-dumpable before entering the container: its processes cannot reach our exe or fds.
            _ = cl_prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
            for procs in cgroupProcs { try Files.write(procs, "0") }
        }) { _ in
            Executor.run(process, seccomp: seccomp, sync: childSync, consoleFD: consoleFD, inUserNS: inUserNS, preserveFDs: opts.preserveFDs)
        }
        childSync.close()
        let pid = try Executor.handshake(parentSync, record: record)
        Log.debug("exec \(opts.id): process \(pid) started")
        let master = consoleListener >= 0 ? cl_recv_fd(consoleListener) : -1
        if consoleListener >= 0 { close(consoleListener) }
        if let pidFile = opts.pidFile { try Executor.writePidFile(pidFile, pid: pid) }
        if opts.detach { return 0 }
        return Runner.waitLoop(initPid: pid, signals: cl_signalfd_all(nil), master: master)
    }

    /// As runc: a process nobody can find by its pid file is not left running.
    private static func writePidFile(_ path: String, pid: pid_t) throws {
        do { try Files.writeAtomically(Files.absolute(path), Array(String(pid).utf8)) } catch {
            kill(pid, SIGKILL)
            var st: Int32 = 0
            waitpid(pid, &st, 0)
            throw error
        }
    }

    /// The init's namespaces that differ from ours, opened now.
    private static func namespaces(of record: ContainerRecord, fds: inout [Int32]) throws -> [NamespaceJoin] {
        var joins: [NamespaceJoin] = []
        for ns in ["user", "cgroup", "ipc", "uts", "net", "pid", "mnt", "time"] {
            guard let theirs = Lifecycle.nsInode(record.initPid, ns), theirs != Lifecycle.nsInode(getpid(), ns) else { continue }
            let fd = try check("open \(ns) namespace of \(record.initPid)") { open("/proc/\(record.initPid)/ns/\(ns)", O_RDONLY | O_CLOEXEC) }
            fds.append(fd)
            joins.append(NamespaceJoin(type: ns, fd: fd))
        }
        return joins
    }

    /// `.pid` from the intermediate, maybe `.seccomp` and its notify fd from the process, then
    /// EOF once exec closed the socket, or `.error`. The first two may come in either order.
    private static func handshake(_ sync: SyncSocket, record: ContainerRecord) throws -> pid_t {
        var pid: pid_t?
        var seccomp = SeccompHandoff()
        defer { seccomp.discard() }
        while let message = try sync.receive() {
            switch message {
            case .error(let text):
                if let pid { var status: Int32 = 0; waitpid(pid, &status, 0) }
                throw RuntimeError("exec failed: " + text)
            case .pid(let p): pid = p
            case .seccomp: try seccomp.receive(on: sync)
            default: throw RuntimeError("bad exec handshake: \(message.encoded)")
            }
            try seccomp.forward(record.config.linux?.seccomp, pid: pid) {
                HookRunner.state(record.config, id: record.id, status: .running, pid: $0, bundle: record.bundle)
            }
        }
        guard let pid else { throw RuntimeError("exec: process exited before it started") }
        return pid
    }

    /// In the process itself, inside every namespace: rlimits, terminal, identity, exec.
    private static func run(_ process: Process, seccomp: SeccompProgram?, sync: SyncSocket, consoleFD: Int32, inUserNS: Bool, preserveFDs: Int32) -> Never {
        var executable = ""
        var env: [String] = []
        do {
            try Rlimits.apply(process.rlimits ?? [])
            if let adj = process.oomScoreAdj { try Files.write("/proc/self/oom_score_adj", String(adj)) }
            executable = try ExecutableLookup.find(process.args![0], env: process.env ?? [], cwd: process.cwd)
            env = ContainerInit.environment(process)
            var console: Console?
            if consoleFD >= 0 {
                console = try Console.allocate(socketFD: consoleFD, size: process.consoleSize, owner: process.user.uid, bindConsole: false)
                close(consoleFD)
            }
            var filter = seccomp
            if let s = seccomp, s.notify {
                // The listener needs this process's own notify fd before it may run.
                try SeccompHandoff.loadAndSend(s, over: sync)
                filter = nil
            }
            try ContainerInit.becomeProcess(process, console: console, inUserNS: inUserNS, preserveFDs: preserveFDs, seccomp: filter)
        } catch {
            sync.send(.error("\(error)"))
            _exit(1)
        }
        // On success exec closes the socket (close-on-exec): srunc reads EOF.
        ContainerInit.exec(executable, process.args!, env)
    }
}
