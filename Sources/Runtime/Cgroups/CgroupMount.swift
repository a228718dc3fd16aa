@preconcurrency import Glibc
import CLinux
import OCI

/// A `cgroup` mount in config.json: the container sees its own cgroup hierarchy. With a cgroup
/// namespace fresh cgroupfs mounts are rooted at the container's cgroup; without one, the
/// container's subtree of each host hierarchy is bound instead.
struct CgroupMount {
    let destination: String
    let flags: UInt
    let newCgroupNS: Bool

    /// A host cgroup hierarchy: its mount point, fs type and the options naming its controllers.
    struct Hierarchy { let mountPoint: String; let fsType: String; let options: String }

    static let cgroup2Magic: Int = 0x63677270

    /// A pure cgroup v2 host: /sys/fs/cgroup itself is cgroup2 (not hybrid, not legacy v1).
    static func hostIsUnified() -> Bool { unifiedRoot != nil }

    /// The cgroup2 hierarchy srunc uses alone: /sys/fs/cgroup on a unified host, or the one
    /// SRUNC_CGROUP2_MOUNT names (a test mode: the v2 tree of a hybrid host, with whatever
    /// controllers it has). nil: v1 (legacy or hybrid).
    static let unifiedRoot: String? = {
        var fs = statfs()
        if let forced = getenv("SRUNC_CGROUP2_MOUNT").map({ String(cString: $0) }), !forced.isEmpty {
            return statfs(forced, &fs) == 0 && Int(fs.f_type) == cgroup2Magic ? forced : nil
        }
        return statfs("/sys/fs/cgroup", &fs) == 0 && Int(fs.f_type) == cgroup2Magic ? "/sys/fs/cgroup" : nil
    }()

    static func hierarchies() -> [Hierarchy] { mounted }

    /// Read once per process: the init, cloned after create has read it, inherits the list (its
    /// new mount namespace holds the same cgroup mounts). mountinfo grows with every mount on
    /// the host (a daemon holding 500 container rootfs has 500 more lines), so lines are
    /// skipped as bytes unless their filesystem type is cgroup or cgroup2.
    private static let mounted: [Hierarchy] = {
        guard let bytes = Files.read("/proc/self/mountinfo") else { return [] }
        let marker = Array(" - cgroup".utf8)
        var out: [Hierarchy] = []
        for line in bytes.split(separator: UInt8(ascii: "\n")) where contains(line, marker) {
            let text = String(decoding: line, as: UTF8.self)
            let halves = text.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " "), right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3, right[0] == "cgroup" || right[0] == "cgroup2" else { continue }
            // Keep only the words naming controllers: they are the mount data a fresh mount needs.
            let options = right[0] == "cgroup2" ? "" : right[2].split(separator: ",").filter {
                !["rw", "ro", "xattr", "clone_children", "noprefix"].contains($0) && (!$0.contains("=") || $0.hasPrefix("name="))
            }.joined(separator: ",")
            out.append(Hierarchy(mountPoint: String(left[4]), fsType: String(right[0]), options: options))
        }
        return out
    }()

    private static func contains(_ line: ArraySlice<UInt8>, _ marker: [UInt8]) -> Bool {
        guard line.count >= marker.count else { return false }
        var i = line.startIndex
        while i <= line.endIndex - marker.count {
            if line[i] == marker[0] && line[i..<(i + marker.count)].elementsEqual(marker) { return true }
            i += 1
        }
        return false
    }

    /// This process's cgroups as /proc/self/cgroup lists them now: read once per use (a
    /// layout, a mount of every hierarchy), not once per hierarchy.
    struct OwnCgroups {
        private let lines: [(id: Substring, controllers: Set<Substring>, path: Substring)]

        init() {
            lines = (Files.readString("/proc/self/cgroup") ?? "").split(separator: "\n").compactMap { line in
                let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                return f.count == 3 ? (f[0], Set(f[1].split(separator: ",")), f[2]) : nil
            }
        }

        /// The path in the hierarchy with the given options ("" for cgroup2); "/" when not listed.
        func path(for h: Hierarchy) -> String {
            let wanted = Set(h.options.split(separator: ","))
            let line = lines.first { h.fsType == "cgroup2" ? $0.id == "0" : $0.controllers == wanted }
            return line.map { String($0.path) } ?? "/"
        }
    }

    func mount(in root: PathInRoot) throws {
        if let unified = CgroupMount.unifiedRoot {
            let h = Hierarchy(mountPoint: unified, fsType: "cgroup2", options: "")
            try mountHierarchy(h, at: destination, in: root, own: OwnCgroups())
            return
        }
        let base = try root.ensure(destination, directory: true)
        try check("mount tmpfs for cgroups on \(destination)") {
            Glibc.mount("tmpfs", PathInRoot.procPath(base), "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), "mode=755")
        }
        close(base)
        guard let tree = root.open(destination) else { throw RuntimeError.sys("reopen \(destination)") }
        defer { close(tree) }
        // The binds' flags (ro, nosuid...) go on the whole tree at the end in one call; where
        // mount_setattr is missing, each bind is remounted and the tmpfs last, as before.
        let attributes = CgroupMount.mountAttributes(flags & ~UInt(MS_REMOUNT | MS_BIND | MS_REC))
        let together = attributes.map { _ in cl_mount_setattr_recursive(-1, 0, 0) != -1 || errno != ENOSYS } ?? false
        let own = OwnCgroups()
        for h in CgroupMount.hierarchies() where h.mountPoint.hasPrefix("/sys/fs/cgroup/") {
            let name = String(h.mountPoint.dropFirst("/sys/fs/cgroup/".count))
            try mountHierarchy(h, at: destination + "/" + name, in: root, own: own, remount: !together)
        }
        if together, let (set, clear) = attributes {
            try check("set \(destination)'s mount flags") { cl_mount_setattr_recursive(tree, set, clear) }
        } else if flags & UInt(MS_RDONLY) != 0 {
            try check("remount \(destination) read-only") {
                Glibc.mount(nil, PathInRoot.procPath(tree), nil, UInt(MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC), "mode=755")
            }
        }
    }

    /// mount(2) flags as mount_setattr's MOUNT_ATTR_* bits (set, clear); nil when there is none
    /// to set or one it cannot express.
    static func mountAttributes(_ flags: UInt) -> (UInt64, UInt64)? {
        let simple: [(UInt, UInt64)] = [(UInt(MS_RDONLY), 0x1), (UInt(MS_NOSUID), 0x2), (UInt(MS_NODEV), 0x4), (UInt(MS_NOEXEC), 0x8),
                                        (UInt(MS_NODIRATIME), 0x80)]
        let atime: [(UInt, UInt64)] = [(UInt(MS_RELATIME), 0x0), (UInt(MS_NOATIME), 0x10), (UInt(MS_STRICTATIME), 0x20)]
        var set: UInt64 = 0, clear: UInt64 = 0, known: UInt = 0
        for (flag, attr) in simple where flags & flag != 0 { set |= attr }
        for (flag, attr) in atime where flags & flag != 0 { set |= attr; clear |= 0x70 }
        for (flag, _) in simple + atime { known |= flag }
        guard flags & ~known == 0, set != 0 || clear != 0 else { return nil }
        return (set, clear)
    }

    private func mountHierarchy(_ h: Hierarchy, at dest: String, in root: PathInRoot, own: OwnCgroups, remount: Bool = true) throws {
        let fd = try root.ensure(dest, directory: true)
        defer { close(fd) }
        let target = PathInRoot.procPath(fd)
        let mountFlags = flags & ~UInt(MS_REMOUNT | MS_BIND | MS_REC)
        if newCgroupNS {
            try check("mount \(h.fsType) on \(dest)") {
                Glibc.mount(h.fsType, target, h.fsType, mountFlags, h.options.isEmpty ? nil : h.options)
            }
            return
        }
        let source = h.mountPoint + own.path(for: h)
        try check("bind \(source) on \(dest)") { Glibc.mount(source, target, nil, UInt(MS_BIND | MS_REC), nil) }
        guard mountFlags != 0, remount else { return }
        // The fd still names the directory under the new mount: reopen to reach the mount itself.
        guard let mounted = root.open(dest) else { throw RuntimeError.sys("reopen \(dest)") }
        defer { close(mounted) }
        try check("remount \(dest)") {
            Glibc.mount(nil, PathInRoot.procPath(mounted), nil, mountFlags | UInt(MS_BIND | MS_REMOUNT), nil)
        }
    }
}
