@preconcurrency import Glibc

/// Unix stream sockets by path, for every process of the stack: the shim's control and console
/// sockets, the daemon's RPC socket, and their clients.
public enum UnixSocket {
    /// A socket call that failed: which, on what path, and errno's text.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    static func failure(_ what: String) -> Failure { Failure(description: "\(what): \(String(cString: strerror(errno)))") }

    static func address(_ path: String) throws(Failure) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw Failure(description: "socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return addr
    }

    /// A listening socket at `path` (a stale file there is replaced), created under a 0077 umask:
    /// only root can connect, not even for an instant after bind.
    public static func listen(path: String, backlog: Int32 = 64) throws(Failure) -> Int32 {
        var addr = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw failure("socket") }
        unlink(path)
        let old = umask(0o077)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        if bound != 0 { let e = failure("bind \(path)"); close(fd); throw e }
        if Glibc.listen(fd, backlog) != 0 { let e = failure("listen \(path)"); close(fd); throw e }
        return fd
    }

    /// A connected socket (close-on-exec).
    public static func connect(path: String) throws(Failure) -> Int32 {
        var addr = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw failure("socket") }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if ok != 0 { let e = failure("connect \(path)"); close(fd); throw e }
        return fd
    }

    /// Whether a live process accepts connections at `path` (a socket left by a killed process
    /// refuses them, and may be replaced).
    public static func isServed(_ path: String) -> Bool {
        guard access(path, F_OK) == 0, let fd = try? connect(path: path) else { return false }
        close(fd)
        return true
    }
}
