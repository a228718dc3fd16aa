@preconcurrency import Glibc

/// The parent/init handshake over a SOCK_SEQPACKET pair: one short text message per packet
/// ("pid:N", "go", "ready", "error:<text>"), so no framing is needed.
struct SyncSocket {
    let fd: Int32

    static func pair() throws -> (parent: SyncSocket, child: SyncSocket) {
        var fds: [Int32] = [0, 0]
        try check("socketpair") { socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
        return (SyncSocket(fd: fds[0]), SyncSocket(fd: fds[1]))
    }

    @discardableResult
    func send(_ message: String) -> Bool {
        let bytes = Array(message.utf8.prefix(65000))
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// The next message, or nil at EOF (the other side exited).
    func receive() -> String? {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            return String(decoding: buf[0..<n], as: UTF8.self)
        }
    }

    func close() { _ = Glibc.close(fd) }
}
