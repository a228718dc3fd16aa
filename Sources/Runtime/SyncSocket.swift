@preconcurrency import Glibc
import CLinux

/// Every message srunc and the processes it starts (the intermediate, the init, an exec'd
/// process) send each other during create and exec. One case per step of the handshake:
///
///     create:  init -> [hooks] <- resume(pid) ... [seccomp + fd] ... ready <- persisted ... EOF
///     exec:    intermediate -> pid(N); process -> [seccomp + fd] ... EOF at exec
///
/// `go` releases an init whose cgroup srunc joins for it (in a user namespace it cannot).
enum SyncMessage: Equatable {
    /// Intermediate -> srunc: the pid of the process it cloned into the joined namespaces.
    case pid(pid_t)
    /// srunc -> init: cgroup joined and id maps written; go on.
    case go
    /// init -> srunc: mounts are done; run prestart and createRuntime now.
    case hooks
    /// srunc -> init: those hooks ran; the init's pid as the host sees it (for createContainer).
    case resume(pid_t)
    /// child -> srunc: a seccomp notify fd follows on the socket (SCM_RIGHTS).
    case seccomp
    /// init -> srunc: everything that can fail has succeeded; about to block on exec.fifo.
    case ready
    /// srunc -> init: the state is on disk; drop the parent-death signal and wait for start.
    case persisted
    /// Any child -> srunc: the step that failed, in runc's words.
    case error(String)

    var encoded: String {
        switch self {
        case .pid(let p): return "pid:\(p)"
        case .go: return "go"
        case .hooks: return "hooks"
        case .resume(let p): return "resume:\(p)"
        case .seccomp: return "seccomp"
        case .ready: return "ready"
        case .persisted: return "persisted"
        case .error(let text): return "error:" + text
        }
    }

    init?(_ text: String) {
        if text.hasPrefix("error:") { self = .error(String(text.dropFirst(6))); return }
        if text.hasPrefix("pid:"), let p = pid_t(text.dropFirst(4)) { self = .pid(p); return }
        if text.hasPrefix("resume:"), let p = pid_t(text.dropFirst(7)) { self = .resume(p); return }
        switch text {
        case "go": self = .go
        case "hooks": self = .hooks
        case "seccomp": self = .seccomp
        case "ready": self = .ready
        case "persisted": self = .persisted
        default: return nil
        }
    }
}

/// One end of the handshake: a SOCK_SEQPACKET pair, one message per packet, so no framing.
struct SyncSocket {
    let fd: Int32

    static func pair() throws -> (parent: SyncSocket, child: SyncSocket) {
        var fds: [Int32] = [0, 0]
        try check("socketpair") { socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
        return (SyncSocket(fd: fds[0]), SyncSocket(fd: fds[1]))
    }

    /// False when nobody is left to read it (the other side exited).
    @discardableResult
    func send(_ message: SyncMessage) -> Bool {
        let bytes = Array(message.encoded.utf8.prefix(65000))
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// The next message; nil at EOF (every other holder of the pair's far end has exited).
    func receive() throws -> SyncMessage? {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            let text = String(decoding: buf[0..<n], as: UTF8.self)
            guard let message = SyncMessage(text) else { throw RuntimeError("bad handshake message: \(text)") }
            return message
        }
    }

    /// Sends a seccomp notify fd: the `seccomp` message, then the fd itself.
    func sendSeccompFD(_ notifyFD: Int32) throws {
        send(.seccomp)
        if cl_send_fd(fd, notifyFD, "seccompFd") != 0 { throw RuntimeError.sys("send seccomp fd") }
    }

    func close() { _ = Glibc.close(fd) }
}
