import API
import Foundation
import OCI
import Wire

/// A live container's accounting (`stats`), processes (`top`) and limits (`update`): read from
/// its cgroup, asked of the runtime, changed through the runtime's `update`.
extension Daemon {
    func cgroupPath(_ c: Metadata.ContainerRow) -> String { (c.options.cgroupParent ?? "/scontainerd") + "/" + c.id }

    func stats(_ c: Metadata.ContainerRow) throws -> ContainerStats {
        guard c.status.isLive else { throw APIError.precondition("container \(c.name) is \(c.status.rawValue)") }
        let files = CgroupFiles(relative: cgroupPath(c))
        let pid = files.firstPid
        let (rx, tx) = pid.map(Daemon.networkBytes) ?? (0, 0)
        let (read, write) = files.blockBytes
        return ContainerStats(id: c.id, name: c.name, read: Timestamp.now(), cpuNanos: files.cpuNanos, systemNanos: Daemon.systemCPUNanos(),
                              onlineCPUs: sysconf(Int32(_SC_NPROCESSORS_ONLN)), memoryUsage: files.memoryUsage,
                              memoryLimit: min(files.memoryLimit, Daemon.hostMemory()), pids: files.pids,
                              blockRead: read, blockWrite: write, netReceived: rx, netSent: tx)
    }

    /// The runtime's `ps` of the container: its titles and rows (the command may hold spaces).
    func top(_ c: Metadata.ContainerRow) throws -> TopResult {
        guard c.status.isLive else { throw APIError.precondition("container \(c.name) is \(c.status.rawValue)") }
        let out = try execute(config.runtime, ["--root", config.state + "/runtime", "ps", c.id])
        guard out.code == 0 else { throw APIError(.runtimeError, "\(config.runtime) ps: \(out.stderr)") }
        let lines = out.stdout.split(separator: "\n").map(String.init)
        guard let header = lines.first else { return TopResult(titles: [], processes: []) }
        let titles = header.split(separator: " ").map(String.init)
        let rows = lines.dropFirst().map { line -> [String] in
            let fields = line.split(separator: " ", maxSplits: max(titles.count - 1, 0)).map(String.init)
            return fields.count == titles.count ? fields : fields + Array(repeating: "", count: titles.count - fields.count)
        }
        return TopResult(titles: titles, processes: rows)
    }

    /// New limits: kept in the container's options and bundle (later runs get them) and, on a
    /// live container, applied now through the runtime's `update`.
    func updateContainer(_ c: Metadata.ContainerRow, _ p: UpdateParams) throws -> Metadata.ContainerRow {
        var options = c.options
        if let m = p.memory { options.memory = m }
        if let cpus = p.cpus { options.cpus = cpus }
        if let pids = p.pidsLimit { options.pidsLimit = pids }
        if let r = p.restart { options.restart = r }
        try options.validate()
        if c.status.isLive {
            var args = ["--root", config.state + "/runtime", "update"]
            if let m = p.memory { args += ["--memory", String(m), "--memory-swap", String(m)] }
            if let cpus = p.cpus { args += ["--cpu-period", "100000", "--cpu-quota", String(Int64(cpus * 100_000))] }
            if let pids = p.pidsLimit { args += ["--pids-limit", String(pids > 0 ? pids : -1)] }
            if args.count > 3 {
                let out = try execute(config.runtime, args + [c.id])
                guard out.code == 0 else { throw APIError(.runtimeError, "\(config.runtime) update: \(out.stderr)") }
            }
        }
        try rewriteBundleResources(c.id, options)
        try metadata.setOptions(c.id, options, event: EventDraft(namespace: c.namespace, type: .container, action: .update, id: c.id, attributes: ["name": c.name]))
        return try row(c.namespace, c.id)
    }

    /// The bundle's config.json with the resources of `options`, for the container's next run.
    private func rewriteBundleResources(_ id: String, _ options: CreateOptions) throws {
        let path = bundleDir(id) + "/config.json"
        var spec = try JSONDecoder().decode(Spec.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        var resources = spec.linux?.resources ?? Resources()
        if let m = options.memory { resources.memory = Memory(limit: m, swap: m) }
        if let c = options.cpus { var cpu = resources.cpu ?? CPU(); cpu.period = 100_000; cpu.quota = Int64(c * 100_000); resources.cpu = cpu }
        if let p = options.pidsLimit { resources.pids = p > 0 ? Pids(limit: p) : nil }
        spec.linux?.resources = resources
        try writeBundleConfig(spec, id: id)
    }

    /// Bytes received and sent on every interface but `lo` of the process's network namespace.
    static func networkBytes(_ pid: pid_t) -> (UInt64, UInt64) {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/net/dev", encoding: .utf8)) ?? ""
        var rx: UInt64 = 0, tx: UInt64 = 0
        for line in text.split(separator: "\n").dropFirst(2) {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) != "lo" else { continue }
            let numbers = parts[1].split(separator: " ").compactMap { UInt64($0) }
            if numbers.count > 8 { rx += numbers[0]; tx += numbers[8] }
        }
        return (rx, tx)
    }

    /// The host's CPU time in all (the `cpu` line of /proc/stat), in nanoseconds.
    static func systemCPUNanos() -> UInt64 {
        let line = ((try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? "").split(separator: "\n").first ?? ""
        let ticks = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }.reduce(0, +)
        return ticks * (1_000_000_000 / UInt64(max(1, sysconf(Int32(_SC_CLK_TCK)))))
    }

    static func hostMemory() -> UInt64 {
        let text = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let kb = text.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }?.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }
        return (kb ?? 0) * 1024
    }
}

/// The accounting files of one container's cgroup, v1 (a directory per controller) or v2.
struct CgroupFiles {
    let relative: String
    private let unified = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")

    private func read(_ controller: String, _ file: String) -> String? {
        try? String(contentsOfFile: "/sys/fs/cgroup" + (unified ? "" : "/" + controller) + relative + "/" + file, encoding: .utf8)
    }

    private func number(_ controller: String, _ file: String) -> UInt64 {
        let text = read(controller, file)?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return text == "max" ? UInt64.max : UInt64(text) ?? 0
    }

    private func keyed(_ controller: String, _ file: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for line in (read(controller, file) ?? "").split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 2, let v = UInt64(f[1]) { out[String(f[0])] = v }
        }
        return out
    }

    var firstPid: pid_t? { (read("pids", "cgroup.procs") ?? "").split(separator: "\n").first.flatMap { pid_t($0) } }
    var cpuNanos: UInt64 { unified ? (keyed("", "cpu.stat")["usage_usec"] ?? 0) * 1000 : number("cpuacct", "cpuacct.usage") }
    var pids: UInt64 { number("pids", "pids.current") }
    var memoryLimit: UInt64 { number("memory", unified ? "memory.max" : "memory.limit_in_bytes") }

    /// Usage less the inactive page cache, as docker shows it.
    var memoryUsage: UInt64 {
        let usage = number("memory", unified ? "memory.current" : "memory.usage_in_bytes")
        let cache = keyed("memory", "memory.stat")[unified ? "inactive_file" : "total_inactive_file"] ?? 0
        return usage > cache ? usage - cache : 0
    }

    /// Bytes read and written on block devices.
    var blockBytes: (UInt64, UInt64) {
        var r: UInt64 = 0, w: UInt64 = 0
        if unified {
            for line in (read("", "io.stat") ?? "").split(separator: "\n") {
                for field in line.split(separator: " ") {
                    let kv = field.split(separator: "=")
                    if kv.count == 2, let v = UInt64(kv[1]) { if kv[0] == "rbytes" { r += v } else if kv[0] == "wbytes" { w += v } }
                }
            }
        } else {
            for line in (read("blkio", "blkio.throttle.io_service_bytes") ?? "").split(separator: "\n") {
                let f = line.split(separator: " ")
                guard f.count == 3, let v = UInt64(f[2]) else { continue }
                if f[1] == "Read" { r += v } else if f[1] == "Write" { w += v }
            }
        }
        return (r, w)
    }
}
