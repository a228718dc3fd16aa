@preconcurrency import Glibc
import CLinux
import OCI

/// Builds the container's filesystem view inside its new mount namespace: config mounts in
/// order, /dev, pivot_root, then masked and read-only paths. Runs in the init, before exec.
struct Rootfs {
    let spec: Spec
    let rootfs: String
    let inUserNS: Bool
    let newCgroupNS: Bool
    /// False for a config without a new mount namespace: the mounts are made in the caller's
    /// (under the rootfs, removed again by delete) and the root changes by chroot, as in runc.
    let ownMountNS: Bool
    /// Bind sources srunc cloned on the host (detached trees) before the init entered its user
    /// namespace, where a root-only source would be out of reach; by index in `mounts`.
    var bindSources: [Int: Int32] = [:]

    /// Everything that happens while the host's tree is still visible.
    func prepare() throws {
        if ownMountNS { try isolate() }
        let rootFD = try check("open rootfs") { open(rootfs, CL_O_PATH | O_DIRECTORY | O_CLOEXEC) }
        defer { close(rootFD) }
        let root = PathInRoot(rootFD: rootFD)
        for (i, m) in (spec.mounts ?? []).enumerated() { try mount(m, sourceFD: bindSources[i], in: root) }
        let devIsBound = (spec.mounts ?? []).contains { $0.destination == "/dev" && MountOptions($0.options ?? []).isBind }
        if !devIsBound { try Devices(root: root, inUserNS: inUserNS).populate(spec.linux?.devices ?? []) }
        if spec.process?.terminal == true { close(try root.ensure("/dev/console", directory: false)) }
    }

    /// In the container's own mount namespace: cut propagation to the host, bind the rootfs
    /// onto itself so that it is a mount point pivot_root accepts.
    private func isolate() throws {
        // rslave unless the config asks otherwise (as runc): with `rshared` (Kubernetes'
        // Bidirectional propagation) mounts made inside reach the host through shared binds.
        let propagation = spec.linux?.rootfsPropagation.flatMap { MountOptions.propagation[$0] } ?? UInt(MS_SLAVE | MS_REC)
        try check("set / propagation") { Glibc.mount(nil, "/", nil, propagation, nil) }
        if propagation & UInt(MS_SHARED) != 0 { try Rootfs.makeParentMountPrivate(of: rootfs) }
        try check("bind rootfs \(rootfs)") { Glibc.mount(rootfs, rootfs, nil, UInt(MS_BIND | MS_REC), nil) }
    }

    /// Mounts one config entry onto its destination resolved inside the rootfs.
    private func mount(_ m: OCI.Mount, sourceFD: Int32?, in root: PathInRoot) throws {
        let opts = MountOptions(m.options ?? [])
        let type = m.type ?? (opts.isBind ? "bind" : "")
        if opts.isBind || type == "bind" {
            try bind(m, opts, sourceFD: sourceFD, in: root)
        } else if type == "cgroup" || type == "cgroup2" {
            try CgroupMount(destination: m.destination, flags: opts.flags, newCgroupNS: newCgroupNS).mount(in: root)
        } else {
            // proc or sysfs on a symlink would land wherever the image points it: a known escape.
            if (type == "proc" || type == "sysfs") && root.isSymlink(m.destination) {
                throw RuntimeError("mount \(type) on \(m.destination): the destination is a symlink")
            }
            let fd = try root.ensure(m.destination, directory: true)
            defer { close(fd) }
            let data = opts.data.joined(separator: ",")
            // A read-only /dev is filled first (devices, /dev/pts) and made read-only in finish().
            var flags = opts.flags & ~UInt(MS_REMOUNT)
            if m.destination == "/dev" { flags &= ~UInt(MS_RDONLY) }
            let r = Glibc.mount(m.source ?? type, PathInRoot.procPath(fd), type, flags, data)
            if r != 0 {
                if type == "sysfs" && (errno == EPERM || errno == EACCES) {
                    // A user namespace without its own netns may not mount sysfs: bind the host's, as runc does.
                    try bind(OCI.Mount(destination: m.destination, type: "bind", source: "/sys", options: ["rbind"] + (m.options ?? [])),
                             MountOptions(["rbind"] + (m.options ?? [])), in: root)
                    return
                }
                throw RuntimeError.sys("mount \(type) on \(m.destination)")
            }
        }
        try applyPropagation(opts, at: m.destination, in: root)
    }

    private func bind(_ m: OCI.Mount, _ opts: MountOptions, sourceFD: Int32? = nil, in root: PathInRoot) throws {
        guard let named = m.source, !named.isEmpty else {
            throw RuntimeError("mount \(m.destination): bind mount needs a source")
        }
        var st = stat()
        let found = sourceFD.map { fstat($0, &st) } ?? stat(named, &st)
        guard found == 0 else { throw RuntimeError.sys("bind mount source \(named)") }
        let fd = try root.ensure(m.destination, directory: (st.st_mode & S_IFMT) == S_IFDIR)
        let bindFlags = opts.flags & UInt(MS_BIND | MS_REC)
        let r = sourceFD.map { cl_move_mount_onto($0, fd) } ?? Glibc.mount(named, PathInRoot.procPath(fd), nil, bindFlags, nil)
        close(fd)
        if r != 0 { throw RuntimeError.sys("bind \(named) on \(m.destination)") }
        let extra = opts.flags & ~UInt(MS_BIND | MS_REC | MS_REMOUNT)
        if extra != 0 { try remountBind(m.destination, flags: extra, in: root) }
        if opts.recursiveReadOnly {
            guard let fd = root.open(m.destination) else { throw RuntimeError.sys("reopen \(m.destination)") }
            defer { close(fd) }
            try check("make \(m.destination) recursively read-only") { cl_mount_setattr_rdonly_recursive(fd) }
        }
    }

    /// Applies per-mount flags to a bind mount (the kernel ignores them on the first call).
    private func remountBind(_ dest: String, flags: UInt, in root: PathInRoot) throws {
        guard let fd = root.open(dest) else { throw RuntimeError.sys("reopen \(dest)") }
        defer { close(fd) }
        let path = PathInRoot.procPath(fd)
        let all = flags | UInt(MS_BIND | MS_REMOUNT) | (inUserNS ? lockedFlags(path) : 0)
        try check("remount \(dest)") { Glibc.mount(nil, path, nil, all, nil) }
    }

    private func applyPropagation(_ opts: MountOptions, at dest: String, in root: PathInRoot) throws {
        guard !opts.propagation.isEmpty else { return }
        guard let fd = root.open(dest) else { throw RuntimeError.sys("reopen \(dest)") }
        defer { close(fd) }
        for p in opts.propagation {
            try check("set propagation of \(dest)") { Glibc.mount(nil, PathInRoot.procPath(fd), nil, p, nil) }
        }
    }

    /// Switches the process root to the rootfs and detaches the host tree.
    func pivot(noPivot: Bool) throws {
        if !ownMountNS {
            try check("chdir rootfs") { chdir(rootfs) }
            try check("chroot") { chroot(".") }
            try check("chdir /") { chdir("/") }
            return
        }
        if noPivot {
            try Rootfs.hideHostProcAndSys(outside: rootfs)
            try check("chdir rootfs") { chdir(rootfs) }
            try check("move rootfs to /") { Glibc.mount(rootfs, "/", nil, UInt(MS_MOVE), nil) }
            try check("chroot") { chroot(".") }
        } else {
            let oldRoot = try check("open /") { open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC) }
            defer { close(oldRoot) }
            try check("chdir rootfs") { chdir(rootfs) }
            try check("pivot_root") { cl_pivot_root(".", ".") }
            try check("fchdir old root") { fchdir(oldRoot) }
            try check("make old root rslave") { Glibc.mount(nil, ".", nil, UInt(MS_SLAVE | MS_REC), nil) }
            try check("detach old root") { umount2(".", Int32(MNT_DETACH)) }
        }
        try check("chdir /") { chdir("/") }
        if let p = spec.linux?.rootfsPropagation, let flag = MountOptions.propagation[p] {
            try check("set rootfs propagation \(p)") { Glibc.mount(nil, "/", nil, flag, nil) }
        }
    }

    /// Without pivot_root the host's tree stays in the namespace under the chroot, and a full
    /// proc or sysfs there lets a nested user namespace mount its own (the kernel only checks
    /// that one is visible somewhere). Every such mount outside the rootfs is detached, or
    /// covered with a tmpfs where it cannot be, as runc does.
    static func hideHostProcAndSys(outside rootfs: String) throws {
        for line in (Files.readString("/proc/self/mountinfo") ?? "").split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1)
            let fields = halves[0].split(separator: " "), fsType = halves.count > 1 ? halves[1].split(separator: " ").first : nil
            guard fields.count > 4, fields[3] == "/", fsType == "proc" || fsType == "sysfs" else { continue }
            let point = String(fields[4])
            guard point != rootfs, !point.hasPrefix(rootfs + "/") else { continue }
            if Glibc.mount(nil, point, nil, UInt(MS_SLAVE | MS_REC), nil) != 0 {
                if errno == ENOENT { continue }
                throw RuntimeError.sys("make \(point) rslave")
            }
            if umount2(point, Int32(MNT_DETACH)) != 0 {
                guard errno == EINVAL || errno == EPERM else { throw RuntimeError.sys("unmount \(point)") }
                try check("cover \(point)") { Glibc.mount("tmpfs", point, "tmpfs", 0, nil) }
            }
        }
    }

    /// pivot_root refuses a shared parent mount, and the rootfs bind must not propagate to the
    /// host: the mount holding the rootfs's parent directory is made private (only needed when
    /// `/` was made shared, as runc does).
    static func makeParentMountPrivate(of rootfs: String) throws {
        let parent = rootfs.split(separator: "/").dropLast().reduce("") { $0 + "/" + $1 }
        var best: (point: String, shared: Bool)?
        for line in (Files.readString("/proc/self/mountinfo") ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 6 else { continue }
            let point = String(fields[4])
            let contains = point == "/" || parent == point || parent.hasPrefix(point + "/")
            if contains && point.count >= (best?.point.count ?? -1) {
                best = (point, fields[6...].prefix { $0 != "-" }.contains { $0.hasPrefix("shared:") })
            }
        }
        if let best, best.shared {
            try check("make \(best.point) private") { Glibc.mount(nil, best.point, nil, UInt(MS_PRIVATE), nil) }
        }
    }

    /// After pivot: sysctls, read-only and masked paths, the cwd, and last a read-only root.
    func finish(cwd: String) throws {
        for (key, value) in spec.linux?.sysctl ?? [:] {
            let path = "/proc/sys/" + String(key.map { $0 == "." ? "/" : $0 })
            do { try Files.write(path, value) } catch { throw RuntimeError("sysctl \(key)=\(value): \(error)") }
        }
        for path in spec.linux?.readonlyPaths ?? [] { try makeReadonly(path) }
        for path in spec.linux?.maskedPaths ?? [] { try mask(path) }
        // Created now, so a cwd that cannot be (a file on the way, as runc reports) fails create.
        try Files.makeDirectories(cwd, mode: 0o755)
        guard Files.isDirectory(cwd) else { throw RuntimeError("process.cwd \(cwd): not a directory") }
        if let dev = spec.mounts?.last(where: { $0.destination == "/dev" }), !MountOptions(dev.options ?? []).isBind,
           MountOptions(dev.options ?? []).flags & UInt(MS_RDONLY) != 0 {
            let flags = (MountOptions(dev.options ?? []).flags & ~UInt(MS_BIND | MS_REC)) | UInt(MS_REMOUNT | MS_RDONLY) | lockedFlags("/dev")
            try check("remount /dev read-only") { Glibc.mount(nil, "/dev", nil, flags, nil) }
        }
        if spec.root?.readonly == true {
            let flags = UInt(MS_BIND | MS_REMOUNT | MS_RDONLY) | lockedFlags("/")
            try check("remount root read-only") { Glibc.mount(nil, "/", nil, flags, nil) }
        }
    }

    private func makeReadonly(_ path: String) throws {
        if Glibc.mount(path, path, nil, UInt(MS_BIND | MS_REC), nil) != 0 {
            if errno == ENOENT { return }
            throw RuntimeError.sys("bind readonly path \(path)")
        }
        let flags = UInt(MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC) | lockedFlags(path)
        try check("remount \(path) read-only") { Glibc.mount(nil, path, nil, flags, nil) }
    }

    private func mask(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            try check("mask \(path)") { Glibc.mount("tmpfs", path, "tmpfs", UInt(MS_RDONLY), nil) }
        } else {
            try check("mask \(path)") { Glibc.mount("/dev/null", path, nil, UInt(MS_BIND), nil) }
        }
    }

    /// Flags a user namespace locks on a mount: a remount must repeat them or fail with EPERM.
    private func lockedFlags(_ path: String) -> UInt {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return 0 }
        var flags: UInt = 0
        // statvfs ST_* bits (glibc hides some behind _GNU_SOURCE) and the MS_* flag each locks.
        let pairs: [(UInt, UInt)] = [(2, UInt(MS_NOSUID)), (4, UInt(MS_NODEV)), (8, UInt(MS_NOEXEC)),
                                     (1024, UInt(MS_NOATIME)), (2048, UInt(MS_NODIRATIME)), (4096, UInt(MS_RELATIME))]
        for (st, ms) in pairs where s.f_flag & st != 0 { flags |= ms }
        return flags
    }

    /// Undoes the mounts a container without its own mount namespace made under its rootfs in
    /// the caller's namespace (runc leaves them): deepest first, detached lazily.
    static func unmountBelow(_ rootfs: String) {
        let prefix = Files.clean(rootfs) + "/"
        let points = (Files.readString("/proc/self/mountinfo") ?? "").split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            return fields.count > 4 && fields[4].hasPrefix(prefix) ? String(fields[4]) : nil
        }
        for point in points.sorted(by: { $0.count > $1.count }) { umount2(point, Int32(MNT_DETACH)) }
    }
}
