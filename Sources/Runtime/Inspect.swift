@preconcurrency import Glibc
import CLinux
import OCI

/// `ps` and `update`: looking into and adjusting a live container through its cgroup.
extension Lifecycle {
    /// The container's pids. A stopped container may still have processes in its cgroup (its
    /// init exited, what it left did not): runc lists those, and so do we.
    public func pids(_ id: String) throws -> [pid_t] {
        let record = try store.load(id)
        guard store.status(of: record) != .stopped else { return (record.cgroup.map { Cgroup(layout: $0).pids() } ?? []).sorted() }
        return Lifecycle.processes(of: record).sorted()
    }

    /// Runs the host's `ps` with `args` and keeps the header and the container's rows, as runc does.
    public func psTable(_ id: String, args: [String]) throws -> String {
        let pids = Set(try self.pids(id).map(String.init))
        let output = try Lifecycle.capture("/bin/ps", args.isEmpty ? ["-ef"] : args)
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let header = lines.first, let column = header.split(separator: " ").firstIndex(of: "PID") else {
            throw RuntimeError("ps output has no PID column")
        }
        lines.removeFirst()
        let rows = lines.filter { line in
            let fields = line.split(separator: " ")
            return fields.count > column && pids.contains(String(fields[column]))
        }
        return ([header] + rows).joined(separator: "\n") + "\n"
    }

    /// Standard output of a helper program, stdin from /dev/null, stderr passed through.
    static func capture(_ path: String, _ args: [String]) throws -> String {
        var fds: [Int32] = [0, 0]
        try check("pipe") { cl_pipe2(&fds, O_CLOEXEC) }
        var argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let pid = cl_spawn(path, &argv, nil, fds[1], 2)
        close(fds[1])
        defer { close(fds[0]) }
        guard pid > 0 else { throw RuntimeError.sys("run \(path)") }
        let out = Files.readAll(fds[0])
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        guard cl_wifexited(st) != 0 && cl_wexitstatus(st) == 0 else { throw RuntimeError("\(path) \(args.joined(separator: " ")) failed") }
        return String(decoding: out, as: UTF8.self)
    }

    /// Applies new resource limits to a running container and remembers them in its state.
    public func update(_ id: String, _ changes: Resources) throws {
        var record = try store.load(id)
        guard store.status(of: record) != .stopped else { throw RuntimeError("container not running") }
        guard let layout = record.cgroup else { throw RuntimeError("container has no cgroup") }
        var merged = record.config.linux?.resources ?? Resources()
        merged.merge(changes)
        var applied = changes
        // A v2 device program replaces the one before: it must encode every rule so far.
        if layout.version == .v2, changes.devices != nil { applied.devices = merged.devices }
        try Cgroup(layout: layout).apply(applied)
        if record.config.linux == nil { record.config.linux = Linux() }
        record.config.linux!.resources = merged
        try store.save(record)
    }
}

extension Resources {
    /// Overlays the sections `other` sets, field by field for memory, cpu and pids.
    mutating func merge(_ other: Resources) {
        if let m = other.memory {
            var cur = memory ?? Memory()
            cur.limit = m.limit ?? cur.limit; cur.reservation = m.reservation ?? cur.reservation
            cur.swap = m.swap ?? cur.swap; cur.swappiness = m.swappiness ?? cur.swappiness
            memory = cur
        }
        if let c = other.cpu {
            var cur = cpu ?? CPU()
            cur.shares = c.shares ?? cur.shares; cur.quota = c.quota ?? cur.quota; cur.period = c.period ?? cur.period
            cur.realtimeRuntime = c.realtimeRuntime ?? cur.realtimeRuntime; cur.realtimePeriod = c.realtimePeriod ?? cur.realtimePeriod
            cur.cpus = c.cpus ?? cur.cpus; cur.mems = c.mems ?? cur.mems
            cpu = cur
        }
        pids = other.pids ?? pids
        blockIO = other.blockIO ?? blockIO
        hugepageLimits = other.hugepageLimits ?? hugepageLimits
        unified = other.unified ?? unified
        // Device rules accumulate, later ones overriding earlier, as v1's allow/deny writes do.
        if let more = other.devices { devices = (devices ?? []) + more }
    }
}
