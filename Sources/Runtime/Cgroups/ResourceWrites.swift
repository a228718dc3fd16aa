import OCI

/// `linux.resources` translated into cgroup file writes, without touching the filesystem, so
/// both translations are unit-tested and the same code serves create and `update`.
public struct CgroupWrite: Equatable, Sendable {
    /// v1: the controller whose directory holds the file; v2: "".
    public let controller: String
    public let file: String
    public let value: String
    /// Written instead when `file` does not exist (blkio.weight for a kernel without BFQ).
    public var fallback: String? = nil
    /// When neither file exists the write is dropped, not an error (as runc does for these).
    public var skipIfMissing = false
}

public enum ResourceWrites {
    static func device(_ major: Int64, _ minor: Int64) -> String { "\(major):\(minor)" }

    /// Writes for a v1 hierarchy set, in an order the kernel accepts (period before quota).
    public static func v1(_ r: Resources) throws -> [CgroupWrite] {
        if !(r.unified ?? [:]).isEmpty { throw RuntimeError("invalid configuration: cannot use unified on cgroup v1") }
        var w: [CgroupWrite] = []
        func add(_ c: String, _ f: String, _ v: String) { w.append(CgroupWrite(controller: c, file: f, value: v)) }
        if let m = r.memory {
            // memsw must stay >= limit: the applier retries whichever the kernel refused first.
            if let swap = m.swap, swap != 0 { add("memory", "memory.memsw.limit_in_bytes", String(swap)) }
            // No memory limit and no swap given: no swap limit either, else the kernel refuses
            // an unlimited memory under a limited memsw (runc does the same; kernels without
            // swap accounting have no memsw file).
            if m.limit == -1 && m.swap == nil {
                w.append(CgroupWrite(controller: "memory", file: "memory.memsw.limit_in_bytes", value: "-1", skipIfMissing: true))
            }
            if let v = m.limit, v != 0 { add("memory", "memory.limit_in_bytes", String(v)) }
            if let swap = m.swap, swap != 0 { add("memory", "memory.memsw.limit_in_bytes", String(swap)) }
            if let v = m.reservation, v != 0 { add("memory", "memory.soft_limit_in_bytes", String(v)) }
            if let v = m.swappiness { add("memory", "memory.swappiness", String(v)) }
            if m.disableOOMKiller == true { add("memory", "memory.oom_control", "1") }
        }
        if let c = r.cpu {
            if let v = c.shares, v != 0 { add("cpu", "cpu.shares", String(v)) }
            if let v = c.period, v != 0 { add("cpu", "cpu.cfs_period_us", String(v)) }
            if let v = c.quota, v != 0 { add("cpu", "cpu.cfs_quota_us", String(v)) }
            if let v = c.burst { add("cpu", "cpu.cfs_burst_us", String(v)) }
            if let v = c.realtimePeriod, v != 0 { add("cpu", "cpu.rt_period_us", String(v)) }
            if let v = c.realtimeRuntime, v != 0 { add("cpu", "cpu.rt_runtime_us", String(v)) }
            if let v = c.idle { add("cpu", "cpu.idle", String(v)) }
            if let v = c.cpus, !v.isEmpty { add("cpuset", "cpuset.cpus", v) }
            if let v = c.mems, !v.isEmpty { add("cpuset", "cpuset.mems", v) }
        }
        if let p = r.pids { add("pids", "pids.max", p.limit > 0 ? String(p.limit) : "max") }
        if let b = r.blockIO {
            // BFQ's files when the kernel has them, else CFQ's; neither (no proportional
            // scheduler) drops the weight, as runc and docker do.
            func weight(_ bfq: String, _ cfq: String, _ v: String) {
                w.append(CgroupWrite(controller: "blkio", file: bfq, value: v, fallback: cfq, skipIfMissing: true))
            }
            if let v = b.weight, v != 0 { weight("blkio.bfq.weight", "blkio.weight", String(v)) }
            if let v = b.leafWeight, v != 0 { add("blkio", "blkio.leaf_weight", String(v)) }
            for d in b.weightDevice ?? [] {
                if let v = d.weight { weight("blkio.bfq.weight_device", "blkio.weight_device", "\(device(d.major, d.minor)) \(v)") }
                if let v = d.leafWeight { add("blkio", "blkio.leaf_weight_device", "\(device(d.major, d.minor)) \(v)") }
            }
            let throttles: [(String, [ThrottleDevice]?)] = [
                ("blkio.throttle.read_bps_device", b.throttleReadBpsDevice), ("blkio.throttle.write_bps_device", b.throttleWriteBpsDevice),
                ("blkio.throttle.read_iops_device", b.throttleReadIOPSDevice), ("blkio.throttle.write_iops_device", b.throttleWriteIOPSDevice)]
            for (file, list) in throttles { for d in list ?? [] { add("blkio", file, "\(device(d.major, d.minor)) \(d.rate)") } }
        }
        for h in r.hugepageLimits ?? [] { add("hugetlb", "hugetlb.\(h.pageSize).limit_in_bytes", String(h.limit)) }
        if let n = r.network {
            if let v = n.classID { add("net_cls", "net_cls.classid", String(v)) }
            for p in n.priorities ?? [] { add("net_prio", "net_prio.ifpriomap", "\(p.name) \(p.priority)") }
        }
        let devices = r.devices ?? []
        for d in devices + (devices.isEmpty ? [] : alwaysAllowedDevices) {
            let major = d.major.map(String.init) ?? "*", minor = d.minor.map(String.init) ?? "*"
            let type = d.type ?? "a"
            let rule = type == "a" && d.major == nil && d.minor == nil ? "a" : "\(type) \(major):\(minor) \(d.access.map(accessLetters) ?? "rwm")"
            add("devices", d.allow ? "devices.allow" : "devices.deny", rule)
        }
        return w
    }

    /// The letters of a device access string the kernel knows, in its order: runc takes them in
    /// any order and drops others.
    static func accessLetters(_ access: String) -> String {
        String("rwm".filter { access.contains($0) })
    }

    /// Appended after a container's own device rules, as runc does: mknod of any node (so /dev
    /// can be populated under a deny-all list, which podman sends) and use of the default nodes,
    /// /dev/console, /dev/ptmx, the container's ptys and /dev/net/tun.
    static let alwaysAllowedDevices: [DeviceRule] = [
        DeviceRule(allow: true, type: "c", access: "m"), DeviceRule(allow: true, type: "b", access: "m"),
    ] + [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (10, 200)].map {
        DeviceRule(allow: true, type: "c", major: $0.0, minor: $0.1, access: "rwm")
    } + [DeviceRule(allow: true, type: "c", major: 136, access: "rwm")]

    /// cpu.shares (2..262144) mapped onto cpu.weight (1..10000), the conversion runc and crun use.
    public static func weight(fromShares s: UInt64) -> UInt64 {
        s == 0 ? 0 : 1 + ((max(2, min(s, 262144)) - 2) * 9999) / 262142
    }

    /// Writes for a unified (v2) directory; `unified` entries go last and win.
    public static func v2(_ r: Resources) throws -> [CgroupWrite] {
        var w: [CgroupWrite] = []
        func add(_ f: String, _ v: String) { w.append(CgroupWrite(controller: "", file: f, value: v)) }
        func limit(_ v: Int64) -> String { v < 0 ? "max" : String(v) }
        if let m = r.memory {
            if let v = m.limit, v != 0 { add("memory.max", limit(v)) }
            if let v = m.reservation, v != 0 { add("memory.low", limit(v)) }
            if let swap = m.swap, swap != 0 {
                // v1's swap is memory+swap; v2's memory.swap.max is swap alone.
                guard swap < 0 || (m.limit ?? 0) > 0 else { throw RuntimeError("linux.resources.memory.swap needs memory.limit on cgroup v2") }
                add("memory.swap.max", swap < 0 ? "max" : String(max(0, swap - (m.limit ?? 0))))
            }
        }
        if let c = r.cpu {
            if let s = c.shares, s != 0 { add("cpu.weight", String(weight(fromShares: s))) }
            if c.quota != nil || c.period != nil {
                let quota = (c.quota ?? 0) > 0 ? String(c.quota!) : "max"
                add("cpu.max", "\(quota) \(c.period ?? 100000)")
            }
            if let v = c.idle { add("cpu.idle", String(v)) }
            if let v = c.cpus, !v.isEmpty { add("cpuset.cpus", v) }
            if let v = c.mems, !v.isEmpty { add("cpuset.mems", v) }
        }
        if let p = r.pids { add("pids.max", p.limit > 0 ? String(p.limit) : "max") }
        if let b = r.blockIO {
            if let v = b.weight, v != 0 { add("io.weight", "default \(v)") }
            for d in b.weightDevice ?? [] { if let v = d.weight { add("io.weight", "\(device(d.major, d.minor)) \(v)") } }
            let keys: [(String, [ThrottleDevice]?)] = [("rbps", b.throttleReadBpsDevice), ("wbps", b.throttleWriteBpsDevice),
                                                      ("riops", b.throttleReadIOPSDevice), ("wiops", b.throttleWriteIOPSDevice)]
            for (key, list) in keys { for d in list ?? [] { add("io.max", "\(device(d.major, d.minor)) \(key)=\(d.rate)") } }
        }
        for h in r.hugepageLimits ?? [] { add("hugetlb.\(h.pageSize).max", String(h.limit)) }
        for (key, value) in (r.unified ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard !key.contains("/"), key.contains(".") else { throw RuntimeError("linux.resources.unified: invalid key \"\(key)\"") }
            add(key, value)
        }
        return w
    }
}
