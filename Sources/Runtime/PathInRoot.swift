@preconcurrency import Glibc
import CLinux

/// Resolves container paths against a rootfs directory fd with openat2(RESOLVE_IN_ROOT): a
/// symlink in the image ("/etc -> /host/etc", "../../..") can never lead outside the rootfs,
/// and there is no check-then-use race because the mount goes onto the fd itself.
struct PathInRoot {
    let rootFD: Int32

    /// An CL_O_PATH fd for `path` inside the root, or nil with errno set.
    func open(_ path: String, flags: Int32 = CL_O_PATH) -> Int32? {
        let fd = cl_openat_in_root(rootFD, path, flags)
        return fd >= 0 ? fd : nil
    }

    /// Opens `path` inside the root, creating missing directories (and the last component as a
    /// directory or an empty file). Returns an CL_O_PATH fd the caller mounts onto via /proc/self/fd.
    /// Whether `path` (inside the root) is itself a symlink.
    func isSymlink(_ path: String) -> Bool {
        var st = stat()
        let relative = String(path.drop { $0 == "/" })
        return !relative.isEmpty && fstatat(rootFD, relative, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    func ensure(_ path: String, directory: Bool, depth: Int = 0) throws -> Int32 {
        if let fd = open(path) { return fd }
        guard depth < 40 else { throw RuntimeError("resolve \(path) in rootfs: too many levels of symbolic links") }
        guard errno == ENOENT else { throw RuntimeError.sys("resolve \(path) in rootfs") }
        let parts = path.split(separator: "/").map(String.init)
        var prefix = ""
        for (i, name) in parts.enumerated() {
            let parentPath = prefix.isEmpty ? "/" : prefix
            prefix += "/" + name
            if let fd = open(prefix) { close(fd); continue }
            guard errno == ENOENT else { throw RuntimeError.sys("resolve \(prefix) in rootfs") }
            guard let parent = open(parentPath, flags: CL_O_PATH | O_DIRECTORY) else {
                throw RuntimeError.sys("resolve \(parentPath) in rootfs")
            }
            defer { close(parent) }
            let last = i == parts.count - 1
            if last && !directory {
                let fd = openat(parent, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0o644)
                if fd < 0 && errno != EEXIST { throw RuntimeError.sys("create \(prefix) in rootfs") }
                if fd >= 0 { close(fd) }
            } else if mkdirat(parent, name, 0o755) != 0 && errno != EEXIST {
                throw RuntimeError.sys("mkdir \(prefix) in rootfs")
            }
            if open(prefix).map({ close($0) }) == nil, let target = symlinkTarget(parent, name) {
                // A dangling symlink: create what it points to, read as a path inside the root.
                let base = target.hasPrefix("/") ? target : parentPath + "/" + target
                let rest = parts[(i + 1)...].joined(separator: "/")
                let resolved = Files.clean(base + (rest.isEmpty ? "" : "/" + rest))
                return try ensure(resolved, directory: directory, depth: depth + 1)
            }
        }
        guard let fd = open(path) else {
            // Still missing after creation: the last component is a symlink pointing nowhere.
            throw RuntimeError.sys("resolve \(path) in rootfs (dangling symlink?)")
        }
        return fd
    }

    private func symlinkTarget(_ dirFD: Int32, _ name: String) -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(dirFD, name, &buf, buf.count - 1)
        guard n > 0 else { return nil }
        buf[n] = 0
        return String(nulTerminated: buf)
    }

    /// The magic-link path the kernel resolves back to `fd`'s object.
    static func procPath(_ fd: Int32) -> String { "/proc/self/fd/\(fd)" }
}
