@preconcurrency import Glibc
import CLinux
import OCI

/// What the container's init needs, captured by the parent before clone.
struct InitPlan {
    let id: String
    let spec: Spec
    let bundlePath: String
    let rootfs: String
    let sync: SyncSocket
    /// Where to send the pty master (console socket or run's own socketpair); -1 without a tty.
    let consoleFD: Int32
    /// CL_O_PATH fd of exec.fifo, and of the host's /proc to reopen it for writing after pivot_root.
    let fifoFD: Int32
    let hostProcFD: Int32
    let noPivot: Bool
    /// The session keyring to join ("_ses.<id>"), or nil for --no-new-keyring.
    let keyring: String?
    let preserveFDs: Int32
    /// False when an intermediate process (which exits at once) cloned the init.
    let parentIsCreator: Bool
    let newUserNS: Bool
    /// The parent places the init in its cgroup (inside a user namespace it cannot) and says "go".
    let waitForParent: Bool
    /// cgroup.procs files the init writes itself into, first thing (none when born in its cgroup).
    var cgroupProcs: [String]
    let newCgroupNS: Bool
    /// Bind sources opened on the host, by index in `mounts` (see Rootfs.bindSources).
    var bindSources: [Int: Int32] = [:]
    /// linux.seccomp compiled by srunc before the clone (SeccompProgram.prepare).
    var seccomp: SeccompProgram?
}

/// The container's init: runs in the cloned child, builds the container from inside, reports
/// ready, blocks on exec.fifo until `start`, then drops privileges and execs the process.
enum ContainerInit {
    static func run(_ plan: InitPlan) -> Never {
        let process = plan.spec.process!
        let target: (executable: String, env: [String])
        do {
            try settle(plan)
            Log.debug("init \(plan.id): settled (cgroup, namespaces, keyring)")
            try buildFilesystem(plan)
            Log.debug("init \(plan.id): filesystem built")
            target = try prepareExec(plan)
        } catch {
            plan.sync.send(.error("\(error)"))
            _exit(1)
        }
        awaitPersisted(plan)
        waitForStart(plan)
        do {
            let seccomp = plan.seccomp.flatMap { $0.notify ? nil : $0 }
            try becomeProcess(process, console: nil, inUserNS: plan.newUserNS || Rootless.inUserNamespace, preserveFDs: plan.preserveFDs,
                              seccomp: seccomp)
            // As in runc: after seccomp and the identity change, right before exec.
            try HookRunner.run(plan.spec.hooks?.startContainer, kind: "startContainer",
                               state: HookRunner.state(plan.spec, id: plan.id, status: .created, pid: getpid(), bundle: plan.bundlePath))
        } catch {
            fail("\(error)")
        }
        exec(target.executable, process.args!, target.env)
    }

    /// The first steps: cgroup, identity in a new user namespace, cgroup namespace, loopback,
    /// keyring, OOM score, and no longer dumpable.
    private static func settle(_ plan: InitPlan) throws {
        // Die with srunc if it dies mid-create; not when the parent is the short-lived intermediate.
        if plan.parentIsCreator { _ = cl_prctl(PR_SET_PDEATHSIG, UInt(SIGKILL), 0, 0, 0) }
        Log.debug("init \(plan.id): cloned")
        for procs in plan.cgroupProcs { try Files.write(procs, "0") }
        if !plan.cgroupProcs.isEmpty { Log.debug("init \(plan.id): joined its cgroups") }
        if plan.waitForParent { guard try plan.sync.receive() == .go else { _exit(1) } }
        if plan.newUserNS {
            try check("setresgid 0") { cl_setresgid(0, 0, 0) }
            try check("setresuid 0") { cl_setresuid(0, 0, 0) }
        }
        if plan.newCgroupNS { try check("unshare cgroup namespace") { cl_unshare(CL_NEWCGROUP) } }
        if plan.spec.hasNewNamespace("time") { try TimeNamespace.enter(offsets: plan.spec.linux?.timeOffsets ?? [:]) }
        // A new network namespace starts with `lo` down; runc and crun bring it up.
        if plan.spec.hasNewNamespace("network") {
            try check("bring up the loopback interface") { cl_loopback_up() }
        }
        umask(0)
        // Relative mount sources are relative to the bundle.
        try check("chdir bundle") { chdir(plan.bundlePath) }
        if let keyring = plan.keyring, cl_join_session_keyring(keyring) < 0, errno != ENOSYS {
            throw RuntimeError.sys("join session keyring")
        }
        if let adj = plan.spec.process!.oomScoreAdj { try Files.write("/proc/self/oom_score_adj", String(adj)) }
        // Until exec this process *is* srunc: no one in the container may open /proc/<pid>/exe
        // (CVE-2019-5736) or its fds. exec makes it dumpable again.
        _ = cl_prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    }

    /// Mounts, the hooks that run between mounts and pivot, hostname, pivot_root, the console,
    /// then what must happen inside the new root.
    private static func buildFilesystem(_ plan: InitPlan) throws {
        let process = plan.spec.process!
        var rootfs = Rootfs(spec: plan.spec, rootfs: plan.rootfs, inUserNS: plan.newUserNS || Rootless.inUserNamespace, newCgroupNS: plan.newCgroupNS,
                            ownMountNS: plan.spec.hasNewNamespace("mount"))
        rootfs.bindSources = plan.bindSources
        try rootfs.prepare()
        let hooks = plan.spec.hooks ?? Hooks()
        if !((hooks.prestart ?? []) + (hooks.createRuntime ?? []) + (hooks.createContainer ?? [])).isEmpty {
            // The parent runs prestart/createRuntime in the runtime namespace and tells us our host pid.
            plan.sync.send(.hooks)
            guard case .resume(let pid)? = try plan.sync.receive() else { _exit(1) }
            // createContainer runs in the container's namespaces with the rootfs as its cwd, as in runc.
            try check("chdir rootfs") { chdir(plan.rootfs) }
            try HookRunner.run(hooks.createContainer, kind: "createContainer",
                               state: HookRunner.state(plan.spec, id: plan.id, status: .creating, pid: pid, bundle: plan.bundlePath))
        }
        if let hostname = plan.spec.hostname {
            try check("sethostname") { sethostname(hostname, hostname.utf8.count) }
        }
        if let domain = plan.spec.domainname {
            try check("setdomainname") { setdomainname(domain, domain.utf8.count) }
        }
        try rootfs.pivot(noPivot: plan.noPivot)
        if plan.consoleFD >= 0 {
            // The slave replaces the caller's stdio now, as in runc: a caller that reads our
            // stdout to EOF (go-runc does) must not wait for the container to start.
            try Console.allocate(socketFD: plan.consoleFD, size: process.consoleSize, owner: process.user.uid, bindConsole: true)
                .attachAsStdio()
            close(plan.consoleFD)
        }
        try rootfs.finish(cwd: process.cwd)
    }

    /// Everything else that can fail, so that it fails in create: rlimits, a capability we
    /// cannot grant, the executable, a seccomp filter with a listener. The executable and env.
    private static func prepareExec(_ plan: InitPlan) throws -> (executable: String, env: [String]) {
        let process = plan.spec.process!
        try Rlimits.apply(process.rlimits ?? [])
        try Capabilities.checkGrantable(process.capabilities)
        let executable = try ExecutableLookup.find(process.args![0], env: process.env ?? [], cwd: process.cwd)
        if let seccomp = plan.seccomp, seccomp.notify {
            // Loaded now, while create still runs: the parent passes the fd to the listener.
            try SeccompHandoff.loadAndSend(seccomp, over: plan.sync)
        }
        return (executable, environment(process))
    }

    /// Reports ready and waits until srunc has saved the state. Until then srunc's death (EOF
    /// here, or the parent-death signal) ends the init: nothing half-created outlives its
    /// creator. Then the signal is dropped and the socket closed, which lets srunc exit.
    private static func awaitPersisted(_ plan: InitPlan) {
        guard plan.sync.send(.ready), (try? plan.sync.receive()) == .persisted else { _exit(1) }
        _ = cl_prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0)
        plan.sync.close()
    }

    /// The process's environment, with HOME from the container's /etc/passwd when it has none
    /// ("/" for a user not listed), as runc sets it; docker relies on that.
    static func environment(_ process: OCI.Process) -> [String] {
        var env = process.env ?? []
        guard !env.contains(where: { $0.hasPrefix("HOME=") }) else { return env }
        var home = "/"
        for line in (Files.readString("/etc/passwd") ?? "").split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count > 5, UInt32(fields[2]) == process.user.uid, !fields[5].isEmpty {
                home = String(fields[5])
                break
            }
        }
        env.append("HOME=" + home)
        return env
    }

    /// The last steps before exec, shared with `exec`: terminal, identity, cwd, umask, and
    /// close-on-exec for every fd past stdio and the preserved ones.
    /// The seccomp filter goes last: after no_new_privs when that is set, otherwise just before
    /// the identity change, while CAP_SYS_ADMIN still permits loading it.
    static func becomeProcess(_ process: OCI.Process, console: Console?, inUserNS: Bool, preserveFDs: Int32, seccomp: SeccompProgram?) throws {
        try console?.attachAsStdio()
        let nnp = process.noNewPrivileges == true
        if let seccomp, !nnp { try seccomp.install() }
        // The cwd is entered while still privileged: a root-only cwd works for any user, as in runc.
        try check("chdir \(process.cwd)") { chdir(process.cwd) }
        try dropPrivileges(process, inUserNS: inUserNS)
        umask(mode_t(process.user.umask ?? 0o022))
        for fd in 3..<(3 + preserveFDs) { _ = cl_clear_cloexec(fd) }
        _ = cl_close_range_cloexec(UInt32(3 + preserveFDs))
        if let seccomp, nnp { try seccomp.install() }
    }

    /// Blocks opening exec.fifo for writing until `start` opens it for reading. The fifo stays
    /// open, close-on-exec: `start` sees EOF exactly when the process has been exec'd.
    private static func waitForStart(_ plan: InitPlan) {
        let fifo = openat(plan.hostProcFD, "self/fd/\(plan.fifoFD)", O_WRONLY | O_CLOEXEC)
        if fifo < 0 { fail("open exec fifo: \(String(cString: strerror(errno)))") }
        _ = write(fifo, "0", 1)
        close(plan.fifoFD)
        close(plan.hostProcFD)
    }

    /// Groups, gids, uid and capabilities in the order the kernel permits: bounding set while
    /// still root, identity with KEEPCAPS, then the final sets and no_new_privs.
    static func dropPrivileges(_ p: OCI.Process, inUserNS: Bool) throws {
        if let caps = p.capabilities { try Capabilities.dropBounding(caps) }
        var groups = (p.user.additionalGids ?? []).map { gid_t($0) }
        if cl_setgroups(groups.count, &groups) != 0 && !(inUserNS && errno == EPERM) {
            throw RuntimeError.sys("setgroups")
        }
        _ = cl_prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
        try check("setresgid \(p.user.gid)") { cl_setresgid(p.user.gid, p.user.gid, p.user.gid) }
        try check("setresuid \(p.user.uid)") { cl_setresuid(p.user.uid, p.user.uid, p.user.uid) }
        _ = cl_prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0)
        if let caps = p.capabilities { try Capabilities.applySets(caps) }
        if p.noNewPrivileges == true {
            try check("set no_new_privs") { cl_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }
        }
    }

    static func exec(_ path: String, _ args: [String], _ env: [String]) -> Never {
        var cArgs = args.map { strdup($0) } + [nil]
        var cEnv = env.map { strdup($0) } + [nil]
        _ = cl_sigmask_restore()
        execve(path, &cArgs, &cEnv)
        fail("exec \(path): \(String(cString: strerror(errno)))")
    }

    /// After start nobody listens on the sync socket: the container's stderr is all that's left.
    static func fail(_ message: String) -> Never {
        let line = Array("srunc: \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        _exit(127)
    }
}

/// Finds the executable for process.args[0] inside the container, as exec would: names with a
/// slash are taken as they are, others are searched in the process's PATH.
enum ExecutableLookup {
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    static func find(_ name: String, env: [String], cwd: String) throws -> String {
        if name.contains("/") {
            let path = name.hasPrefix("/") ? name : cwd + "/" + name
            try checkExecutable(path, shown: name)
            return path
        }
        let pathVar = env.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? defaultPath
        for dir in pathVar.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (dir.isEmpty ? cwd : String(dir)) + "/" + name
            if isExecutableFile(candidate) { return candidate }
        }
        throw RuntimeError("exec: \"\(name)\": executable file not found in $PATH")
    }

    private static func isExecutableFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && st.st_mode & 0o111 != 0
    }

    private static func checkExecutable(_ path: String, shown: String) throws {
        var st = stat()
        // runc's (Go's) wording, which clients match: `stat /x: no such file or directory`.
        guard stat(path, &st) == 0 else { throw RuntimeError("exec: \"\(shown)\": stat \(path): \(RuntimeError.goText(errno))") }
        guard (st.st_mode & S_IFMT) == S_IFREG, st.st_mode & 0o111 != 0 else {
            throw RuntimeError("exec: \"\(shown)\": permission denied")
        }
    }
}
