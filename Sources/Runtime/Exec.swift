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
    public init(id: String, process: Process) { self.id = id; self.process = process }
}

/// Runs another process in a live container: an intermediate child joins the container's
/// cgroup and then its namespaces (user first), clones the process into the pid namespace and
/// exits; srunc, as subreaper, then waits for it (or returns at once with --detach).
public struct Executor {
    public let store: StateStore
    public init(store: StateStore) { self.store = store }

    /// The base process for `exec ARGS`: the container's own process with its env, user, caps.
    public func baseProcess(_ id: String) throws -> Process {
        try store.load(id).config.process ?? Process(args: nil)
    }

    public func exec(_ opts: ExecOptions) throws -> Int32 {
        let record = try store.load(opts.id)
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
        // The init's namespaces that differ from ours, the user namespace first.
        var joins: [(String, Int32)] = []
        for ns in ["user", "cgroup", "ipc", "uts", "net", "pid", "mnt"] {
            guard let theirs = Lifecycle.nsInode(record.initPid, ns), theirs != Lifecycle.nsInode(getpid(), ns) else { continue }
            let fd = try check("open \(ns) namespace of \(record.initPid)") { open("/proc/\(record.initPid)/ns/\(ns)", O_RDONLY | O_CLOEXEC) }
            fds.append(fd)
            joins.append((ns, fd))
        }
        guard ProcStat(pid: record.initPid)?.startTime == record.initStartTime else { throw RuntimeError("container not running") }
        let (parentSync, childSync) = try SyncSocket.pair()
        fds.append(parentSync.fd)
        let (consoleFD, consoleListener) = try ConsoleSocket.endpoints(socketPath: opts.consoleSocket, terminal: terminal)
        if consoleFD >= 0 { fds.append(consoleFD) }
        let cgroupProcs = record.cgroup.map { Cgroup(layout: $0).procsFiles } ?? []
        let inUserNS = joins.contains { $0.0 == "user" }
        _ = cl_prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        fflush(stdout); fflush(stderr)
        let mid = cl_clone(0)
        if mid == 0 {
            Executor.intermediate(process, seccomp: record.config.linux?.seccomp, joins: joins, cgroupProcs: cgroupProcs, sync: childSync, consoleFD: consoleFD,
                                  inUserNS: inUserNS, preserveFDs: opts.preserveFDs)
        }
        childSync.close()
        guard mid > 0 else { throw RuntimeError.sys("clone") }
        var st: Int32 = 0
        waitpid(mid, &st, 0)
        // "pid:N" from the intermediate, maybe "seccomp" + its notify fd from the process, then
        // EOF once exec closed the socket, or "error:…". Either of the first two may come first.
        var pid: pid_t = 0, seccompFD: Int32 = -1
        defer { if seccompFD >= 0 { close(seccompFD) } }
        while let msg = parentSync.receive() {
            if msg.hasPrefix("error:") {
                if pid > 0 { var status: Int32 = 0; waitpid(pid, &status, 0) }
                throw RuntimeError("exec failed: " + msg.dropFirst(6))
            } else if msg.hasPrefix("pid:"), let p = pid_t(msg.dropFirst(4)) {
                pid = p
            } else if msg == "seccomp" {
                seccompFD = cl_recv_fd(parentSync.fd)
                if seccompFD < 0 { throw RuntimeError.sys("receive seccomp notify fd") }
            } else {
                throw RuntimeError("bad exec handshake: \(msg)")
            }
            if pid > 0 && seccompFD >= 0, let seccomp = record.config.linux?.seccomp {
                try SeccompFilter.sendToListener(seccomp, fd: seccompFD, state: HookRunner.state(
                    record.config, id: record.id, status: .running, pid: pid, bundle: record.bundle))
                close(seccompFD)
                seccompFD = -1
            }
        }
        guard pid > 0 else { throw RuntimeError("exec: process exited before it started") }
        let master = consoleListener >= 0 ? cl_recv_fd(consoleListener) : -1
        if consoleListener >= 0 { close(consoleListener) }
        if let pidFile = opts.pidFile { try Files.writeAtomically(Files.absolute(pidFile), Array(String(pid).utf8)) }
        if opts.detach { return 0 }
        return Runner.waitLoop(initPid: pid, signals: cl_signalfd_all(nil), master: master)
    }

    /// In the intermediate child: cgroup, then namespaces, then clone the process and report it.
    private static func intermediate(_ process: Process, seccomp: Seccomp?, joins: [(String, Int32)], cgroupProcs: [String], sync: SyncSocket,
                                     consoleFD: Int32, inUserNS: Bool, preserveFDs: Int32) -> Never {
        // Non-dumpable before entering the container: its processes cannot reach our exe or fds.
        _ = cl_prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        do {
            for procs in cgroupProcs { try Files.write(procs, "0") }
            for (type, fd) in joins { try check("join \(type) namespace") { cl_setns(fd, 0) } }
        } catch {
            sync.send("error:\(error)")
            _exit(1)
        }
        let pid = cl_clone(0)
        if pid == 0 { run(process, seccomp: seccomp, sync: sync, consoleFD: consoleFD, inUserNS: inUserNS, preserveFDs: preserveFDs) }
        sync.send(pid > 0 ? "pid:\(pid)" : "error:clone: \(String(cString: strerror(errno)))")
        _exit(0)
    }

    /// In the process itself, inside every namespace: rlimits, terminal, identity, exec.
    private static func run(_ process: Process, seccomp: Seccomp?, sync: SyncSocket, consoleFD: Int32, inUserNS: Bool, preserveFDs: Int32) -> Never {
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
            if let s = seccomp, SeccompFilter.usesNotify(s) {
                // The listener needs this process's own notify fd before it may run.
                let fd = try SeccompFilter.load(s)!
                sync.send("seccomp")
                if cl_send_fd(sync.fd, fd, "seccompFd") != 0 { throw RuntimeError.sys("send seccomp fd") }
                close(fd)
                filter = nil
            }
            try ContainerInit.becomeProcess(process, console: console, inUserNS: inUserNS, preserveFDs: preserveFDs, seccomp: filter)
        } catch {
            sync.send("error:\(error)")
            _exit(1)
        }
        // On success exec closes the socket (close-on-exec): srunc reads EOF.
        ContainerInit.exec(executable, process.args!, env)
    }
}
