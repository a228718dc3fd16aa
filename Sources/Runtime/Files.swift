@preconcurrency import Glibc

/// Small file helpers on raw syscalls: srunc avoids Foundation on its start path.
public enum Files {
    /// The whole file as bytes, or nil when it cannot be opened.
    public static func read(_ path: String, at dirfd: Int32 = AT_FDCWD) -> [UInt8]? {
        let fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        return readAll(fd)
    }

    public static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 { out.append(contentsOf: buf[0..<n]) } else if n < 0 && errno == EINTR { continue } else { break }
        }
        return out
    }

    static func readString(_ path: String) -> String? {
        read(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Writes all bytes to fd, retrying short writes and EINTR.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 { if errno == EINTR { continue }; throw RuntimeError.sys("write") }
            off += n
        }
    }

    /// Writes a small file in place (proc and sysfs knobs, uid maps): one write(2) call.
    static func write(_ path: String, _ text: String, at dirfd: Int32 = AT_FDCWD) throws {
        let fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw RuntimeError.sys("open \(path)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n != bytes.count { throw RuntimeError.sys("write \(path)") }
    }

    /// Replaces `path` atomically: write a temp file beside it, rename over. No fsync: state
    /// and pid files describe processes that a crash of the host ends anyway (runc does not
    /// sync them either), and on a disk-backed root an fsync cost ~2 ms of every create.
    /// The temporary file is `.NAME` beside it, as runc names it (its errors show that name).
    static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        let slash = path.lastIndex(of: "/")
        let tmp = slash.map { path[...$0] + "." + path[path.index(after: $0)...] } ?? "." + path
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        if fd < 0 { throw RuntimeError.sys("open \(tmp)") }
        do {
            try writeAll(fd, bytes)
            close(fd)
        } catch { close(fd); unlink(tmp); throw error }
        if rename(tmp, path) != 0 { let e = errno; unlink(tmp); throw RuntimeError.sys("rename \(path)", e) }
    }

    /// mkdir -p: the leaf first, parents only when missing.
    static func makeDirectories(_ path: String, mode: mode_t) throws {
        if mkdir(path, mode) == 0 || errno == EEXIST { return }
        guard errno == ENOENT, let slash = path.lastIndex(of: "/"), slash != path.startIndex else {
            throw RuntimeError.sys("mkdir \(path)")
        }
        try makeDirectories(String(path[..<slash]), mode: 0o755)
        try makeDirectories(path, mode: mode)
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Removes a directory tree without following symlinks (state dirs only hold plain files).
    static func removeTree(_ path: String) {
        if let dir = opendir(path) {
            while let ent = readdir(dir) {
                let name = withUnsafePointer(to: ent.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                if name == "." || name == ".." { continue }
                let child = path + "/" + name
                var st = stat()
                if lstat(child, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { removeTree(child) } else { unlink(child) }
            }
            closedir(dir)
        }
        rmdir(path)
    }

    /// Names in a directory, without "." and "..".
    static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let ent = readdir(dir) {
            let name = withUnsafePointer(to: ent.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Absolute form of `path`, relative to the current directory; "." and ".." folded lexically.
    public static func absolute(_ path: String) -> String {
        var base = ""
        if !path.hasPrefix("/") {
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX))
            if getcwd(&buf, buf.count) != nil { base = String(nulTerminated: buf) }
        }
        return clean(base + "/" + path)
    }

    /// Lexically cleans an absolute path ("/a/./b/../c" -> "/a/c").
    static func clean(_ path: String) -> String {
        var parts: [Substring] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(c)
        }
        return "/" + parts.joined(separator: "/")
    }
}

extension String {
    /// Text of a NUL-terminated C buffer (what getcwd, readlink and ptsname fill in).
    init(nulTerminated buf: [CChar]) {
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        self.init(decoding: bytes, as: UTF8.self)
    }
}
