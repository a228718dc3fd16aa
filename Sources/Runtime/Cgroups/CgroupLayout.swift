@preconcurrency import Glibc
import CLinux

/// Where a container's cgroup lives: one directory per v1 hierarchy (legacy and hybrid hosts)
/// or one in the unified v2 tree. Computed from mountinfo, /proc/self/cgroup and the config.
public struct CgroupLayout: Codable, Sendable, Equatable {
    public enum Version: String, Codable, Sendable { case v1, v2 }
    public var version: Version
    /// Controller name(s) of each directory ("memory", "cpu,cpuacct", "" for v2) and its path.
    public var dirs: [Dir]

    public struct Dir: Codable, Sendable, Equatable {
        public var controllers: String
        public var path: String
        public init(controllers: String, path: String) { self.controllers = controllers; self.path = path }
    }

    public init(version: Version, dirs: [Dir]) { self.version = version; self.dirs = dirs }

    /// A cgroup2 directory: the v2 host's, or a hybrid host's controller-less unified one.
    func isUnified(_ dir: Dir) -> Bool { version == .v2 || dir.controllers.isEmpty }

    /// The directory of one v1 controller (or the v2 directory).
    func dir(for controller: String) -> String? {
        if version == .v2 { return dirs.first?.path }
        return dirs.first { $0.controllers.split(separator: ",").contains(Substring(controller)) }?.path
    }

    /// Lays out `cgroupsPath` (absolute, relative to srunc's own cgroup, or systemd's
    /// "slice:prefix:name" mapped onto cgroupfs) for the host's cgroup mode.
    static func resolve(cgroupsPath: String?, id: String, systemd: Bool) throws -> CgroupLayout {
        let inner = try innerPath(cgroupsPath, id: id, systemd: systemd)
        if let unified = CgroupMount.unifiedRoot {
            let h = CgroupMount.Hierarchy(mountPoint: unified, fsType: "cgroup2", options: "")
            return CgroupLayout(version: .v2, dirs: [Dir(controllers: "", path: join(h, inner))])
        }
        // Every v1 hierarchy, plus the controller-less cgroup2 tree of a hybrid host (as runc does).
        let v1 = CgroupMount.hierarchies().filter { $0.fsType == "cgroup" || $0.mountPoint != "/sys/fs/cgroup" }
        guard !v1.isEmpty else { throw RuntimeError("no cgroup hierarchy mounted under /sys/fs/cgroup") }
        let own = CgroupMount.OwnCgroups()
        return CgroupLayout(version: .v1, dirs: v1.map { Dir(controllers: $0.options, path: join($0, inner, own)) })
    }

    /// Absolute paths stay as given; relative ones hang under srunc's own cgroup in that hierarchy.
    private static func join(_ h: CgroupMount.Hierarchy, _ inner: (path: String, absolute: Bool), _ own: CgroupMount.OwnCgroups = .init()) -> String {
        let base = inner.absolute ? "" : own.path(for: h)
        return Files.clean(h.mountPoint + "/" + base + "/" + inner.path)
    }

    static func innerPath(_ raw: String?, id: String, systemd: Bool) throws -> (path: String, absolute: Bool) {
        guard let raw, !raw.isEmpty else { return (id, false) }
        if systemd {
            let parts = raw.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3 else { throw RuntimeError("config.json: linux.cgroupsPath \"\(raw)\" is not slice:prefix:name") }
            let slice = try expandSlice(parts[0].isEmpty ? "system.slice" : parts[0])
            let unit = parts[2].hasSuffix(".slice") ? parts[2] : "\(parts[1].isEmpty ? "" : parts[1] + "-")\(parts[2]).scope"
            return (slice + "/" + unit, true)
        }
        if raw.contains("..") { throw RuntimeError("config.json: linux.cgroupsPath \"\(raw)\" must not contain ..") }
        return (raw, raw.hasPrefix("/"))
    }

    /// "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice", as systemd nests slices.
    static func expandSlice(_ slice: String) throws -> String {
        guard slice.hasSuffix(".slice"), !slice.contains("/") else { throw RuntimeError("invalid systemd slice \"\(slice)\"") }
        let name = String(slice.dropLast(".slice".count))
        if name == "-" || name.isEmpty { return "" }
        var path = "", prefix = ""
        for part in name.split(separator: "-", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw RuntimeError("invalid systemd slice \"\(slice)\"") }
            prefix += prefix.isEmpty ? String(part) : "-" + part
            path += "/" + prefix + ".slice"
        }
        return path
    }
}
