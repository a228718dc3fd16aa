import CLinux
import Glibc

/// Unpacks one layer's tar stream into a directory, for use as an overlayfs lower layer:
/// `.wh.NAME` becomes a 0/0 character device NAME and `.wh..wh..opq` the directory's
/// `trusted.overlay.opaque` xattr. No entry may land outside the directory: paths are cleaned
/// lexically, parents are opened with RESOLVE_BENEATH (so no "..", absolute or escaping
/// symlink is followed), and a hardlink's target must already be inside. Device nodes in the
/// layer are skipped: the only ones created are whiteouts.
public struct LayerUnpacker {
    /// How whiteouts are written: as overlayfs expects them in a lower layer, or applied to a
    /// tree that already holds the layers below (the copying rootfs, where overlay is missing).
    public enum Whiteouts: Sendable { case overlay, apply }

    public let root: String
    public let whiteouts: Whiteouts
    /// The most bytes of file data a layer may unpack to: checked against each entry's declared
    /// size before it is written, so a small compressed bomb fails at once.
    public let maxBytes: Int
    private let rootFD: Int32
    private let parents = ParentCache()
    /// Who creates the files (read once: a new file's owner unless its directory says otherwise).
    private let euid = geteuid(), egid = getegid()

    public init(root: String, whiteouts: Whiteouts = .overlay, maxBytes: Int = .max) throws {
        self.root = root
        self.whiteouts = whiteouts
        self.maxBytes = maxBytes
        rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if rootFD < 0 { throw ImageError("open \(root): \(String(cString: strerror(errno)))") }
    }

    /// Releases the root directory fd the unpacker resolves every entry against.
    public func close() { Glibc.close(rootFD) }

    /// Unpacks every entry; returns how many bytes of file data were written.
    @discardableResult
    public func unpack(_ reader: TarReader) throws -> Int {
        var written = 0
        var directories: [(String, TarEntry)] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        defer { parents.drop() }
        while let entry = try reader.next() {
            guard let components = LayerUnpacker.clean(entry.path) else {
                throw ImageError("layer entry \(entry.path) escapes the layer")
            }
            if components.isEmpty { continue }
            let name = components.last!
            let (parent, foreignGroup) = try parents.open(components.dropLast()) { try openParent($0, for: entry.path) }
            if name.hasPrefix(".wh.") {
                try whiteout(parent: parent, name: String(name.dropFirst(4)), path: entry.path)
                continue
            }
            switch entry.kind {
            case .directory:
                if mkdirat(parent, name, 0o700) != 0 && errno != EEXIST { throw fail("mkdir", entry.path) }
                var st = stat()
                if fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) != S_IFDIR {
                    parents.invalidate()
                    unlinkat(parent, name, 0)
                    if mkdirat(parent, name, 0o700) != 0 { throw fail("mkdir", entry.path) }
                }
                directories.append((components.joined(separator: "/"), entry))
            case .file, .other:
                guard entry.size <= maxBytes - written else {
                    throw ImageError("layer unpacks to more than \(maxBytes) bytes (at \(entry.path)): over the store's limit for a layer")
                }
                let fd = try createFile(parent, name, entry.path)
                defer { Glibc.close(fd) }
                while true {
                    let n = try reader.read(into: buffer)
                    if n == 0 { break }
                    var done = 0
                    while done < n {
                        let w = Glibc.write(fd, buffer.baseAddress! + done, n - done)
                        if w < 0 { if errno == EINTR { continue }; throw fail("write", entry.path) }
                        done += w
                    }
                    written += n
                }
                try applyMetadata(parent, name, entry, fd: fd, inheritsGroup: foreignGroup)
            case .symlink:
                if symlinkat(entry.linkTarget, parent, name) != 0 {
                    removeExisting(parent, name)
                    if symlinkat(entry.linkTarget, parent, name) != 0 { throw fail("symlink", entry.path) }
                }
                try applyMetadata(parent, name, entry, fd: -1)
            case .hardlink:
                guard let target = LayerUnpacker.clean(entry.linkTarget), !target.isEmpty else {
                    throw ImageError("layer hardlink \(entry.path) -> \(entry.linkTarget) escapes the layer")
                }
                let targetParent = try openParent(target.dropLast(), for: entry.linkTarget)
                defer { Glibc.close(targetParent) }
                removeExisting(parent, name)
                if linkat(targetParent, target.last!, parent, name, 0) != 0 {
                    let why = errno == ENOENT ? "the target is not in the layer" : String(cString: strerror(errno))
                    throw ImageError("layer hardlink \(entry.path) -> \(entry.linkTarget): \(why)")
                }
            case .fifo:
                removeExisting(parent, name)
                if mkfifoat(parent, name, 0o600) != 0 { throw fail("mkfifo", entry.path) }
                try applyMetadata(parent, name, entry, fd: -1)
            case .charDevice, .blockDevice:
                continue
            }
        }
        // Directory modes and times last, deepest first: files written into them changed both.
        for (path, entry) in directories.reversed() {
            let components = path.split(separator: "/").map(String.init)
            let parent = try openParent(components.dropLast(), for: path)
            defer { Glibc.close(parent) }
            // Through an fd opened without following: a later entry may have replaced the
            // directory with a symlink, which must not redirect the chmod.
            let fd = openat(parent, components.last!, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { Glibc.close(fd) }
            try applyMetadata(parent, components.last!, entry, fd: fd)
        }
        return written
    }

    /// Path components inside the layer, or nil when ".." would climb above its root.
    public static func clean(_ path: String) -> [String]? {
        var out: [String] = []
        for part in path.split(separator: "/") {
            switch part {
            case ".": continue
            case "..":
                if out.isEmpty { return nil }
                out.removeLast()
            default: out.append(String(part))
            }
        }
        return out
    }

    /// A new regular file; what the name held before (an earlier entry's file, link or tree) is
    /// removed only when the exclusive create finds it, so a fresh directory costs no unlink.
    private func createFile(_ parent: Int32, _ name: String, _ path: String) throws -> Int32 {
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
        var fd = openat(parent, name, flags, 0o600)
        if fd < 0 && errno == EEXIST {
            removeExisting(parent, name)
            fd = openat(parent, name, flags, 0o600)
        }
        if fd < 0 { throw fail("create", path) }
        return fd
    }

    /// Directory fds of recent entries' parents (a layer lists a directory's files together).
    /// Only a removal can change what a kept path names (a directory replaced by a link or
    /// removed by a whiteout), so any removal makes the whole cache stale: it is emptied before
    /// the next entry resolves. At most `limit` fds are held (the daemon may run under a low
    /// fd limit).
    final class ParentCache {
        private var fds: [String: (fd: Int32, foreignGroup: Bool)] = [:]
        private var stale = false
        private let limit = 8
        private let egid = getegid()

        /// The parent's fd, and whether its group is not ours: a new file may take the
        /// directory's group (set-group-ID directories, `grpid` mounts), so it must be chowned.
        func open(_ wanted: ArraySlice<String>, _ opener: (ArraySlice<String>) throws -> Int32) throws -> (Int32, Bool) {
            if stale || fds.count >= limit { drop() }
            let key = wanted.joined(separator: "/")
            if let hit = fds[key] { return hit }
            let fd = try opener(wanted)
            var st = stat()
            let foreignGroup = fstat(fd, &st) != 0 || st.st_gid != egid
            fds[key] = (fd, foreignGroup)
            return (fd, foreignGroup)
        }

        /// Something was removed: kept paths may name something else from the next entry on.
        func invalidate() { stale = true }

        func drop() {
            for (fd, _) in fds.values { Glibc.close(fd) }
            fds = [:]
            stale = false
        }
    }

    /// Opens (creating as needed) the directory of `components` beneath the root.
    private func openParent(_ components: ArraySlice<String>, for path: String) throws -> Int32 {
        if components.isEmpty { return dup(rootFD) }
        // Usually the whole path exists already: one resolution beneath the root.
        let whole = cl_openat_beneath(rootFD, components.joined(separator: "/"), O_RDONLY | O_DIRECTORY, 0)
        if whole >= 0 { return whole }
        var fd = dup(rootFD)
        for part in components {
            var next = cl_openat_beneath(fd, part, O_RDONLY | O_DIRECTORY, 0)
            if next < 0 && errno == ENOENT {
                mkdirat(fd, part, 0o755)
                next = cl_openat_beneath(fd, part, O_RDONLY | O_DIRECTORY, 0)
            }
            Glibc.close(fd)
            if next < 0 {
                if errno == EXDEV || errno == ELOOP {
                    throw ImageError("layer entry \(path) leads outside the layer through a symlink")
                }
                throw fail("open parent of", path)
            }
            fd = next
        }
        return fd
    }

    private func whiteout(parent: Int32, name: String, path: String) throws {
        if whiteouts == .apply {
            if name == ".wh..opq" {
                // Opaque: what the layers below put in this directory is gone.
                if let dir = fdopendir(dup(parent)) {
                    var names: [String] = []
                    while let ent = readdir(dir) {
                        let child = withUnsafeBytes(of: ent.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                        if child != "." && child != ".." { names.append(child) }
                    }
                    closedir(dir)
                    for child in names { removeExisting(parent, child) }
                }
            } else if !name.isEmpty, !name.contains("/"), name != ".", name != ".." {
                removeExisting(parent, name)
            }
            return
        }
        if name == ".wh..opq" {
            let done = "y".withCString { fsetxattr(parent, "trusted.overlay.opaque", $0, 1, 0) }
            if done != 0 { throw fail("mark opaque", path) }
            return
        }
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { throw ImageError("bad whiteout \(path)") }
        removeExisting(parent, name)
        if mknodat(parent, name, S_IFCHR | 0o600, cl_makedev(0, 0)) != 0 { throw fail("whiteout", path) }
    }

    private func removeExisting(_ parent: Int32, _ name: String) {
        parents.invalidate()
        if unlinkat(parent, name, 0) != 0 && errno == EISDIR { removeTree(parent, name) }
    }

    /// Removes a directory tree under `parent` without following symlinks.
    private func removeTree(_ parent: Int32, _ name: String) {
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd >= 0, let dir = fdopendir(fd) {
            while let ent = readdir(dir) {
                let child = withUnsafeBytes(of: ent.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if child == "." || child == ".." { continue }
                if unlinkat(fd, child, 0) != 0 && errno == EISDIR { removeTree(fd, child) }
            }
            closedir(dir)
        }
        unlinkat(parent, name, AT_REMOVEDIR)
    }

    /// Owner, mode, xattrs and mtime; through `fd` when there is one (files, directories).
    /// A file this process just created is already its own: the chown is skipped when the entry
    /// names our uid and gid and the directory cannot have given it another group.
    private func applyMetadata(_ parent: Int32, _ name: String, _ entry: TarEntry, fd: Int32, inheritsGroup: Bool = true) throws {
        let ownedAlready = !inheritsGroup && fd >= 0 && uid_t(entry.uid) == euid && gid_t(entry.gid) == egid
        if !ownedAlready {
            let owned = fd >= 0 ? fchown(fd, uid_t(entry.uid), gid_t(entry.gid))
                                : fchownat(parent, name, uid_t(entry.uid), gid_t(entry.gid), AT_SYMLINK_NOFOLLOW)
            if owned != 0 { throw fail("chown", entry.path) }
        }
        if entry.kind != .symlink {
            let mode = mode_t(entry.mode & 0o7777)
            if (fd >= 0 ? fchmod(fd, mode) : fchmodat(parent, name, mode, 0)) != 0 { throw fail("chmod", entry.path) }
            for (key, value) in entry.xattrs where key.hasPrefix("user.") || key.hasPrefix("security.capability") {
                _ = value.withUnsafeBytes { fd >= 0 ? fsetxattr(fd, key, $0.baseAddress, $0.count, 0) : 0 }
            }
        }
        var times = [timespec(tv_sec: entry.mtime, tv_nsec: 0), timespec(tv_sec: entry.mtime, tv_nsec: 0)]
        if fd >= 0 { futimens(fd, &times) } else { utimensat(parent, name, &times, AT_SYMLINK_NOFOLLOW) }
    }

    private func fail(_ what: String, _ path: String) -> ImageError {
        ImageError("\(what) \(path): \(String(cString: strerror(errno)))")
    }
}
