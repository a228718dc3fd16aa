@preconcurrency import Glibc
import CLinux
import Wire

/// One client of the control socket: its unread input, its unsent output, and what it is
/// attached to. Writes never block the shim: output queues, and a client that lets more than
/// `highWater` bytes pile up is disconnected rather than allowed to stall the container.
final class Connection {
    let fd: Int32
    private let loop: EventLoop
    var input: [UInt8] = []
    private var output: [UInt8] = []
    private var sent = 0
    private(set) var closed = false
    /// Where this client's `stdin` requests go (the init when attached, or its exec).
    var stdinTarget: ProcessIO?
    var attached = false
    /// A `logs` request still reading the files: the request id, the cursor, and whether to follow.
    var logRead: (id: JSONValue, cursor: LogFileReader, follow: Bool)?
    var followID: JSONValue?
    var onClose: ((Connection) -> Void)?
    var onDrained: ((Connection) -> Void)?

    static let maxLine = 4 << 20
    static let highWater = 32 << 20
    static let lowWater = 1 << 20

    init(fd: Int32, loop: EventLoop) {
        self.fd = fd
        self.loop = loop
    }

    var pending: Int { output.count - sent }

    func reply(_ id: JSONValue, _ result: JSONValue) {
        send(.object([("id", id), ("result", result)]))
    }

    func fail(_ id: JSONValue, _ code: String, _ message: String) {
        send(.object([("id", id), ("error", .object([("code", .string(code)), ("message", .string(message))]))]))
    }

    func send(_ value: JSONValue) {
        var line: [UInt8] = []
        value.write(to: &line)
        line.append(0x0a)
        send(bytes: line)
    }

    func send(bytes: [UInt8]) {
        guard !closed else { return }
        output.append(contentsOf: bytes)
        if pending > Connection.highWater { close(); return }
        flush()
    }

    /// Writes what the socket takes now; asks epoll for the rest.
    func flush() {
        while sent < output.count {
            let n = output.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n > 0 { sent += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                loop.modify(fd, events: EventLoop.readable | EventLoop.writable)
                return
            }
            close()
            return
        }
        output.removeAll(keepingCapacity: output.capacity <= 1 << 16)
        sent = 0
        loop.modify(fd, events: EventLoop.readable)
    }

    /// epoll says the socket takes data again.
    func writable() {
        flush()
        if !closed && pending == 0 { onDrained?(self) }
    }

    func close() {
        guard !closed else { return }
        closed = true
        loop.unwatch(fd)
        Glibc.close(fd)
        logRead?.cursor.close()
        logRead = nil
        onClose?(self)
    }
}
