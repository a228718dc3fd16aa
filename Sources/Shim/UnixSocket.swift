@preconcurrency import Glibc

/// Unix stream sockets by path: the control socket and console sockets.
enum UnixSocket {
    static func address(_ path: String) throws(ShimError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw ShimError("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return addr
    }

    /// A listening socket at `path` (a stale file there is replaced), mode 0600: root only.
    static func listen(path: String) throws(ShimError) -> Int32 {
        var addr = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw ShimError.sys("socket") }
        unlink(path)
        let old = umask(0o077)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        if bound != 0 { let e = ShimError.sys("bind \(path)"); close(fd); throw e }
        if Glibc.listen(fd, 64) != 0 { let e = ShimError.sys("listen \(path)"); close(fd); throw e }
        return fd
    }

    /// Whether a live process accepts connections at `path` (a socket left by a killed shim
    /// refuses them, and may be replaced).
    static func isServed(_ path: String) -> Bool {
        guard access(path, F_OK) == 0, var addr = try? address(path) else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }
}
