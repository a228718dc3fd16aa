import API
import CLinux
import Foundation

/// `container.copy`: files between a host path and a container's root filesystem, as `docker
/// cp` (a directory copies with its whole tree; symlinks are copied as links; modes and times
/// kept). The container path is resolved inside the rootfs (openat2 RESOLVE_IN_ROOT): `..` and
/// absolute links stop at the container's root, so no link in a hostile image reaches the
/// host. Below it every step is one name opened with O_NOFOLLOW relative to its directory.
extension Daemon {
    func copy(_ c: Metadata.ContainerRow, _ p: CopyParams) throws {
        guard p.hostPath.hasPrefix("/"), p.containerPath.hasPrefix("/") else { throw APIError.params("params: hostPath and containerPath must be absolute") }
        guard !FileCopy.base(p.containerPath).isEmpty, !FileCopy.base(p.hostPath).isEmpty else { throw APIError.params("params: a path other than /") }
        guard c.status != .creating else { throw APIError.precondition("container \(c.name) is being created") }
        let root = open(rootfsDir(c.id), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw APIError.precondition("container \(c.name) has no mounted root filesystem") }
        defer { close(root) }
        let inContainer = { (path: String) in try FileCopy.openInRoot(root, path) }
        let onHost = { (path: String) -> Int32? in let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC); return fd >= 0 ? fd : nil }
        let (from, to) = p.toContainer == true ? (p.hostPath, p.containerPath) : (p.containerPath, p.hostPath)
        let (openSource, openTarget) = p.toContainer == true ? (onHost, inContainer) : (inContainer, onHost)
        do {
            guard let sourceDir = try openSource(FileCopy.parent(of: from)) else { throw FileCopy.Failure(message: "no such directory: \(FileCopy.parent(of: from))") }
            defer { close(sourceDir) }
            // docker's rule: into an existing directory under the source's name, else as the target path.
            let (targetDir, name): (Int32, String)
            if let existing = try openTarget(to) { (targetDir, name) = (existing, FileCopy.base(from)) } else {
                guard let parent = try openTarget(FileCopy.parent(of: to)) else { throw FileCopy.Failure(message: "no such directory: \(FileCopy.parent(of: to))") }
                (targetDir, name) = (parent, FileCopy.base(to))
            }
            defer { close(targetDir) }
            try FileCopy.entry(sourceDir, FileCopy.base(from), to: targetDir, as: name)
        } catch let e as FileCopy.Failure {
            throw APIError.params(e.message)
        }
    }
}

/// The tree walk of `container.copy`, on fds only.
enum FileCopy {
    struct Failure: Error { let message: String }

    static func parent(of path: String) -> String {
        let parts = path.split(separator: "/")
        return "/" + parts.dropLast().joined(separator: "/")
    }

    static func base(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? "" }

    /// The directory `path` opened inside the root (as the container would resolve it); nil if
    /// it is missing or not a directory.
    static func openInRoot(_ root: Int32, _ path: String) throws -> Int32? {
        let relative = String(path.drop { $0 == "/" })
        if relative.isEmpty { return dup(root) }
        let fd = cl_openat_in_root(root, relative, O_RDONLY | O_CLOEXEC | O_DIRECTORY)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw Failure(message: "\(path): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// One entry of `dir`, never followed: a file's bytes, a link's target, a directory with
    /// everything below it, created in `target` as `newName`.
    static func entry(_ dir: Int32, _ name: String, to target: Int32, as newName: String) throws {
        var st = stat()
        guard fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw Failure(message: "\(name): \(String(cString: strerror(errno)))")
        }
        let mode = st.st_mode & 0o7777
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            if mkdirat(target, newName, 0o700) != 0 && errno != EEXIST { throw Failure(message: "mkdir \(newName): \(String(cString: strerror(errno)))") }
            let from = openat(dir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
            let to = openat(target, newName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            defer { if from >= 0 { close(from) }; if to >= 0 { close(to) } }
            guard from >= 0, to >= 0 else { throw Failure(message: "open \(newName): \(String(cString: strerror(errno)))") }
            for child in children(of: from) { try entry(from, child, to: to, as: child) }
            _ = fchmod(to, mode)
            times(to, st)
        case S_IFLNK:
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlinkat(dir, name, &buf, buf.count - 1)
            guard n >= 0 else { throw Failure(message: "readlink \(name): \(String(cString: strerror(errno)))") }
            unlinkat(target, newName, 0)
            guard symlinkat(String(cString: Array(buf[0..<n]) + [0]), target, newName) == 0 else { throw Failure(message: "symlink \(newName): \(String(cString: strerror(errno)))") }
        case S_IFREG:
            let from = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            let to = openat(target, newName, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
            defer { if from >= 0 { close(from) }; if to >= 0 { close(to) } }
            guard from >= 0, to >= 0 else { throw Failure(message: "open \(newName): \(String(cString: strerror(errno)))") }
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let got = read(from, &buf, buf.count)
                if got == 0 { break }
                guard got > 0, write(to, buf, got) == got else { throw Failure(message: "copy \(newName): \(String(cString: strerror(errno)))") }
            }
            _ = fchmod(to, mode)
            times(to, st)
        default:
            // Devices, fifos and sockets are not copied, as docker's archive skips them.
            return
        }
    }

    static func children(of dir: Int32) -> [String] {
        let copy = dup(dir)
        guard copy >= 0, let d = fdopendir(copy) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    private static func times(_ fd: Int32, _ st: stat) {
        var t = [st.st_atim, st.st_mtim]
        _ = futimens(fd, &t)
    }
}
