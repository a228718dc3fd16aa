@preconcurrency import Glibc

/// `srunc events` statistics read from the container's cgroup, in the shape runc prints
/// ({"type":"stats","id":…,"data":{"cpu":…,"memory":…,"pids":…}}).
public struct ContainerStats: Encodable {
    public struct CPU: Encodable { let usage: Usage }
    public struct Usage: Encodable { let total: UInt64; let percpu: [UInt64]?; let kernel: UInt64; let user: UInt64 }
    public struct MemoryUsage: Encodable { let limit: UInt64; let usage: UInt64; let max: UInt64; let failcnt: UInt64 }
    public struct Memory: Encodable { let usage: MemoryUsage; let raw: [String: UInt64] }
    public struct Pids: Encodable { let current: UInt64; let limit: UInt64 }
    let cpu: CPU
    let memory: Memory
    let pids: Pids
}

extension Cgroup {
    private func number(_ path: String?) -> UInt64 {
        guard let path, let text = Files.readString(path) else { return 0 }
        let t = text.split(separator: "\n").first.map(String.init) ?? ""
        return t == "max" ? UInt64.max : UInt64(t) ?? 0
    }

    private func keyed(_ path: String?) -> [String: UInt64] {
        guard let path, let text = Files.readString(path) else { return [:] }
        var out: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 2, let v = UInt64(f[1]) { out[String(f[0])] = v }
        }
        return out
    }

    /// A snapshot of cpu, memory and pids accounting.
    public func stats() -> ContainerStats {
        func file(_ controller: String, _ name: String) -> String? { dir(controller).map { $0 + "/" + name } }
        switch layout.version {
        case .v1:
            // cpuacct.stat counts USER_HZ ticks; runc reports nanoseconds.
            let ticks = keyed(file("cpuacct", "cpuacct.stat"))
            let tick = UInt64(1_000_000_000) / UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
            let percpu = (Files.readString(file("cpuacct", "cpuacct.usage_percpu") ?? "") ?? "")
                .split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt64($0) }
            return ContainerStats(
                cpu: .init(usage: .init(total: number(file("cpuacct", "cpuacct.usage")), percpu: percpu,
                                        kernel: (ticks["system"] ?? 0) * tick, user: (ticks["user"] ?? 0) * tick)),
                memory: .init(usage: .init(limit: number(file("memory", "memory.limit_in_bytes")), usage: number(file("memory", "memory.usage_in_bytes")),
                                           max: number(file("memory", "memory.max_usage_in_bytes")), failcnt: number(file("memory", "memory.failcnt"))),
                              raw: keyed(file("memory", "memory.stat"))),
                pids: .init(current: number(file("pids", "pids.current")), limit: number(file("pids", "pids.max"))))
        case .v2:
            let cpu = keyed(file("", "cpu.stat"))
            return ContainerStats(
                cpu: .init(usage: .init(total: (cpu["usage_usec"] ?? 0) * 1000, percpu: nil,
                                        kernel: (cpu["system_usec"] ?? 0) * 1000, user: (cpu["user_usec"] ?? 0) * 1000)),
                memory: .init(usage: .init(limit: number(file("", "memory.max")), usage: number(file("", "memory.current")),
                                           max: number(file("", "memory.peak")), failcnt: keyed(file("", "memory.events"))["max"] ?? 0),
                              raw: keyed(file("", "memory.stat"))),
                pids: .init(current: number(file("", "pids.current")), limit: number(file("", "pids.max"))))
        }
    }

    private func dir(_ controller: String) -> String? { layout.version == .v2 ? layout.dirs.first?.path : layout.dir(for: controller) }
}

extension Lifecycle {
    /// One stats line, or (without `once`) a line every interval until the container stops.
    public func events(_ id: String, once: Bool, intervalMilliseconds interval: UInt32, emit: (String) -> Void) throws {
        let record = try store.load(id)
        guard store.status(of: record) != .stopped else { throw RuntimeError("container not running") }
        guard let layout = record.cgroup else { throw RuntimeError("container has no cgroup") }
        let cgroup = Cgroup(layout: layout)
        // Members in runc's order (type, id, data): the encoder does not keep declaration order.
        let head = "\"id\":" + String(decoding: try JSON.encode(id), as: UTF8.self)
        func stats() throws {
            emit("{\"type\":\"stats\"," + head + ",\"data\":" + String(decoding: try JSON.encode(cgroup.stats()), as: UTF8.self) + "}\n")
        }
        if once { return try stats() }
        var oom = OOMWatch(layout)
        defer { oom?.close() }
        var next = Lifecycle.monotonicMilliseconds()
        repeat {
            let now = Lifecycle.monotonicMilliseconds()
            if now >= next {
                try stats()
                next = now + UInt64(max(1, interval))
            }
            // Wakes for an OOM kill, the next stats line, or at least each second to see a stop.
            let clock = Lifecycle.monotonicMilliseconds()
            let wait = next > clock ? min(next - clock, 1000) : 0
            var p = pollfd(fd: oom?.fd ?? -1, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, Int32(wait)) > 0, oom?.consume() == true {
                emit("{\"type\":\"oom\"," + head + "}\n")
            }
        } while store.status(of: record) != .stopped
    }

    static func monotonicMilliseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}

