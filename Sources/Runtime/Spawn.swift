@preconcurrency import Glibc
import CLinux
import OCI

/// A namespace to enter: its type (config or /proc name) and an open fd of it.
struct NamespaceJoin {
    let type: String
    let fd: Int32

    /// clone/setns flag of each type, under both the config's and /proc/<pid>/ns's names.
    static let flags: [String: Int32] = [
        "pid": CL_NEWPID, "network": CL_NEWNET, "net": CL_NEWNET, "mount": CL_NEWNS, "mnt": CL_NEWNS,
        "ipc": CL_NEWIPC, "uts": CL_NEWUTS, "user": CL_NEWUSER, "cgroup": CL_NEWCGROUP, "time": CL_NEWTIME,
    ]
}

/// How create and exec start a process in the container's namespaces. With nothing to join it
/// is a clone with the new-namespace flags. Otherwise an intermediate child joins (user first:
/// it grants the rights to join the rest; setns into a pid namespace only affects children),
/// clones, reports the pid as `.pid` and exits; srunc, a subreaper, inherits the process.
enum Spawn {
    /// Returns the pid when srunc cloned the process itself (nil when `.pid` brings it later)
    /// and whether it was born in the cgroup open at `cgroupFD` (v2; -1 for none).
    /// `inIntermediate` runs in the intermediate before it joins (exec enters a v1 cgroup there);
    /// passing one forces the intermediate. Both children close `parentEnd` first, so that the
    /// parent's death is an EOF on every read they make. The child learns whether it was born
    /// in its cgroup: if not (no clone3), it must still be placed.
    static func start(joins: [NamespaceJoin], flags: Int32, cgroupFD: Int32 = -1, sync: SyncSocket, parentEnd: SyncSocket,
                      inIntermediate: (() throws -> Void)? = nil,
                      child: @escaping (_ bornInCgroup: Bool) -> Never) throws -> (pid: pid_t?, bornInCgroup: Bool) {
        fflush(stdout); fflush(stderr)
        if joins.isEmpty && inIntermediate == nil {
            let (pid, born) = clone(flags, into: cgroupFD, fallBack: true)
            // The cgroup directory is a host directory: never an fd the container could reach
            // (process.cwd = /proc/self/fd/N, CVE-2024-21626).
            if pid == 0 { parentEnd.close(); if cgroupFD >= 0 { close(cgroupFD) }; child(born) }
            if pid < 0 { throw RuntimeError.sys("clone") }
            return (pid, born)
        }
        _ = cl_prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        let mid = cl_clone(0)
        if mid == 0 {
            parentEnd.close()
            intermediate(joins: joins.sorted { a, _ in a.type == "user" }, flags: flags, cgroupFD: cgroupFD, sync: sync,
                         prepare: inIntermediate, child: child)
        }
        if mid < 0 { throw RuntimeError.sys("clone") }
        var status: Int32 = 0
        waitpid(mid, &status, 0)
        return (nil, cgroupFD >= 0)
    }

    /// clone3 into the cgroup when one is given, so that nothing migrates the child later (a
    /// migration waits for an RCU grace period); plain clone otherwise. `fallBack`: a kernel
    /// that refuses clone3 gets a plain clone, and the caller places the child.
    private static func clone(_ flags: Int32, into cgroupFD: Int32, fallBack: Bool) -> (pid_t, Bool) {
        if cgroupFD >= 0 {
            let pid = cl_clone_into_cgroup(UInt64(UInt32(bitPattern: flags)), cgroupFD)
            if pid >= 0 || !fallBack { return (pid, true) }
        }
        return (cl_clone(UInt(UInt32(bitPattern: flags))), false)
    }

    private static func intermediate(joins: [NamespaceJoin], flags: Int32, cgroupFD: Int32, sync: SyncSocket,
                                     prepare: (() throws -> Void)?, child: (Bool) -> Never) -> Never {
        do {
            try prepare?()
            // The type given: the kernel refuses a path to a namespace of another type.
            for j in joins {
                try check("join \(j.type) namespace") { cl_setns(j.fd, NamespaceJoin.flags[j.type] ?? 0) }
            }
        } catch {
            sync.send(.error("\(error)"))
            _exit(1)
        }
        // Namespaces joined, paths seen from here may be the container's: no fallback to a write.
        let (pid, born) = clone(flags, into: cgroupFD, fallBack: false)
        if pid == 0 { if cgroupFD >= 0 { close(cgroupFD) }; child(born) }
        let what = cgroupFD >= 0 ? "clone into cgroup" : "clone"
        sync.send(pid > 0 ? .pid(pid) : .error("\(what): \(String(cString: strerror(errno)))"))
        _exit(0)
    }
}

/// The seccomp notify fd of a filter with SCMP_ACT_NOTIFY rules: the child loads the filter and
/// sends the fd; srunc holds it until the child's pid is known, then gives it to the listener
/// (listenerPath) with the container's state, as runc does.
struct SeccompHandoff {
    private(set) var fd: Int32 = -1

    /// Child side: loads the filter now and sends its notify fd.
    static func loadAndSend(_ seccomp: SeccompProgram, over sync: SyncSocket) throws {
        let fd = try seccomp.install()!
        defer { close(fd) }
        try sync.sendSeccompFD(fd)
    }

    /// Parent side, after a `.seccomp` message: the fd that follows it.
    mutating func receive(on sync: SyncSocket) throws {
        fd = cl_recv_fd(sync.fd)
        if fd < 0 { throw RuntimeError.sys("receive seccomp notify fd") }
    }

    /// Gives a received fd to the listener once `pid` is known; nothing to do otherwise.
    mutating func forward(_ seccomp: Seccomp?, pid: pid_t?, state: (pid_t) -> HookState) throws {
        guard fd >= 0, let pid, let seccomp else { return }
        try SeccompFilter.sendToListener(seccomp, fd: fd, state: state(pid))
        discard()
    }

    mutating func discard() {
        if fd >= 0 { close(fd) }
        fd = -1
    }
}
