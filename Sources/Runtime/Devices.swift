@preconcurrency import Glibc
import CLinux
import OCI

/// The container's /dev: the default nodes every container gets, `linux.devices`, the standard
/// symlinks and the devpts ptmx. In a user namespace mknod is denied, so host nodes are bound.
struct Devices {
    let root: PathInRoot
    let inUserNS: Bool

    static let defaults: [Device] = [
        Device(type: "c", path: "/dev/null", major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/zero", major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/full", major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/random", major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/urandom", major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/tty", major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0),
    ]

    func populate(_ configured: [Device]) throws {
        let configuredPaths = Set(configured.map(\.path))
        for d in Devices.defaults where !configuredPaths.contains(d.path) { try create(d) }
        for d in configured { try create(d) }
        let devFD = try root.ensure("/dev", directory: true)
        defer { close(devFD) }
        var links = [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
                     ("/proc/self/fd/2", "stderr")]
        if Files.exists("/proc/kcore") { links.append(("/proc/kcore", "core")) }
        for (target, name) in links where symlinkat(target, devFD, name) != 0 && errno != EEXIST {
            throw RuntimeError.sys("symlink /dev/\(name)")
        }
        unlinkat(devFD, "ptmx", 0)
        try check("symlink /dev/ptmx") { symlinkat("pts/ptmx", devFD, "ptmx") }
    }

    private func create(_ d: Device) throws {
        let slash = d.path.lastIndex(of: "/")!
        let dir = String(d.path[..<slash]), name = String(d.path[d.path.index(after: slash)...])
        let parent = try root.ensure(dir.isEmpty ? "/" : dir, directory: true)
        defer { close(parent) }
        unlinkat(parent, name, 0)
        if inUserNS {
            let fd = openat(parent, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0o644)
            if fd < 0 { throw RuntimeError.sys("create \(d.path)") }
            close(fd)
            guard let target = root.open(d.path) else { throw RuntimeError.sys("reopen \(d.path)") }
            defer { close(target) }
            try check("bind host device \(d.path)") {
                mount(d.path, PathInRoot.procPath(target), nil, UInt(MS_BIND), nil)
            }
            return
        }
        let kind: mode_t = d.type == "b" ? S_IFBLK : d.type == "p" ? S_IFIFO : S_IFCHR
        let dev = d.type == "p" ? 0 : cl_makedev(UInt32(d.major ?? 0), UInt32(d.minor ?? 0))
        try check("mknod \(d.path)") { mknodat(parent, name, kind | mode_t(d.fileMode ?? 0o666), dev) }
        try check("chown \(d.path)") { fchownat(parent, name, d.uid ?? 0, d.gid ?? 0, AT_SYMLINK_NOFOLLOW) }
    }
}
