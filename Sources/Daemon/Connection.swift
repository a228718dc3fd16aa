import API
import CLinux
import Foundation
import Logging
import RPC
import Wire

/// One client connection. It is the only reader of its socket and the one owner that closes
/// it, after every stream it started (an attach or exec session, an event subscription) has
/// stopped writing to it. Requests are answered in order; a session's or subscription's
/// lines interleave with replies, each line tagged with the id of its request.
final class Connection: @unchecked Sendable {
    let daemon: Daemon
    let socket: LineSocket
    private let lock = NSLock()
    /// The attach or exec session, while one runs.
    private var session: ShimSession?
    private var subscribed = false
    private var closing = false
    /// Stream threads still running: the socket closes only after they end.
    private let streams = DispatchGroup()

    init(daemon: Daemon, socket: LineSocket) {
        self.daemon = daemon
        self.socket = socket
    }

    func serve() {
        while let line = socket.readLine(maxLength: Request.maxLineLength) {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0d }) { continue }
            switch Request.parse(line) {
            case .failure(let e): send(Line.error(e.id, e.error))
            case .success(let request): handle(request)
            }
        }
        if socket.overflowed {
            send(Line.error(.null, APIError(.invalidRequest, "a request line is longer than \(Request.maxLineLength) bytes")))
        }
        lock.lock()
        closing = true
        let open = session
        lock.unlock()
        open?.hangUp()
        socket.shutdownBoth()
        streams.wait()
        socket.close()
    }

    @discardableResult
    func send(_ line: [UInt8]) -> Bool { socket.write(line: line) }

    private func handle(_ request: Request) {
        do {
            try Handlers(daemon: daemon, connection: self, request: request).dispatch()
        } catch let error as APIError {
            send(Line.error(request.id, error))
        } catch {
            daemon.log.error("\(request.method.rawValue): \(error)")
            send(Line.error(request.id, APIError.internal("\(error)")))
        }
    }

    var isClosing: Bool { lock.lock(); defer { lock.unlock() }; return closing }

    // MARK: streams

    /// Starts an attach or exec session on this connection (one at a time).
    func begin(_ make: () throws -> ShimSession) throws {
        lock.lock()
        defer { lock.unlock() }
        guard session == nil else { throw APIError.precondition("an attach or exec session is already running on this connection") }
        let s = try make()
        session = s
        streams.enter()
        Thread.detachNewThread { [self] in
            let last = s.relay()
            // Cleared before the last line goes out: a client that hears the exit may start
            // its next session at once.
            lock.lock()
            session = nil
            lock.unlock()
            if let last { send(last) }
            streams.leave()
        }
    }

    /// Passes a stream.* request to the running session.
    func forward(_ request: Request) throws {
        lock.lock()
        let s = session
        lock.unlock()
        guard let s, s.forward(request) else { throw APIError.precondition("no attach or exec session is running on this connection") }
    }

    /// Runs an event subscription's loop on its own thread.
    func subscribe(_ loop: @escaping @Sendable () -> Void) throws {
        lock.lock()
        defer { lock.unlock() }
        guard !subscribed else { throw APIError.precondition("this connection is already subscribed to events") }
        subscribed = true
        streams.enter()
        Thread.detachNewThread { [self] in
            loop()
            streams.leave()
        }
    }
}

/// The daemon's socket: root-only (umask 077, in a 0700 directory), a thread per client up
/// to a limit. docs/scontainerd-rpc.md describes every method.
public final class RPCServer: @unchecked Sendable {
    let daemon: Daemon
    private var listener: Int32 = -1
    private let lock = NSLock()
    private var clients = 0
    /// More concurrent connections than this are refused with an error line.
    static let maxClients = 1024

    public init(daemon: Daemon) { self.daemon = daemon }

    /// Binds the socket root-only; refuses a socket another daemon is serving.
    public func listen() throws {
        let path = daemon.config.socketPath
        if UnixSocket.isServed(path) { throw APIError.conflict("another daemon is serving \(path)") }
        do { listener = try UnixSocket.listen(path: path, backlog: 128) } catch { throw APIError.internal(error.description) }
    }

    /// Accepts clients until the process exits.
    public func serve() -> Never {
        while true {
            let fd = cl_accept4(listener, Int32(SOCK_CLOEXEC.rawValue))
            if fd < 0 {
                if errno != EINTR && errno != ECONNABORTED { daemon.log.warning("accept: \(String(cString: strerror(errno)))"); usleep(10_000) }
                continue
            }
            let socket = LineSocket(fd: fd)
            lock.lock()
            let admitted = clients < RPCServer.maxClients
            if admitted { clients += 1 }
            lock.unlock()
            guard admitted else {
                socket.write(line: Line.error(.null, APIError(.unavailable, "too many connections (\(RPCServer.maxClients))")), dontWait: true)
                socket.close()
                continue
            }
            Thread.detachNewThread { [self] in
                Connection(daemon: daemon, socket: socket).serve()
                lock.lock()
                clients -= 1
                lock.unlock()
            }
        }
    }
}
