import CLinux
import Foundation
import Wire
import RPC

/// The daemon's socket: root-only (umask 077, in a 0700 directory), one thread per client, one
/// JSON request per line: `{"id":ANY,"method":"noun.verb","params":{...}}` answered by
/// `{"id":ANY,"result":...}` or `{"id":ANY,"error":{"code","message"}}`. A slow client blocks
/// only its own thread. docs/scontainerd-rpc.md describes every method.
public final class RPCServer: @unchecked Sendable {
    let daemon: Daemon
    private var listener: Int32 = -1

    public init(daemon: Daemon) { self.daemon = daemon }

    /// Binds the socket root-only (UnixSocket.listen's umask).
    public func listen() throws {
        let path = daemon.config.socketPath
        do { listener = try UnixSocket.listen(path: path, backlog: 128) } catch { throw RPCError.internal(error.description) }
    }

    /// Accepts clients forever.
    public func serve() -> Never {
        while true {
            let fd = cl_accept4(listener, Int32(SOCK_CLOEXEC.rawValue))
            if fd < 0 { continue }
            let socket = LineSocket(fd: fd)
            Thread.detachNewThread { [self] in serveClient(socket) }
        }
    }

    private func serveClient(_ socket: LineSocket) {
        defer { daemon.events.unsubscribe(socket); socket.close() }
        while let line = socket.readLine() {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0d }) { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) else {
                socket.write(["id": NSNull(), "error": ["code": "invalid-json", "message": "the line is not JSON"]])
                continue
            }
            guard let request = object as? [String: Any], let method = request["method"] as? String else {
                socket.write(["id": (object as? [String: Any])?["id"] ?? NSNull(),
                              "error": ["code": "invalid-request", "message": "a request is an object with a string \"method\""]])
                continue
            }
            let id = request["id"] ?? NSNull()
            let params = request["params"] as? [String: Any] ?? [:]
            do {
                switch try Methods(daemon: daemon, socket: socket, id: id).call(method, params) {
                case .result(let result): socket.write(["id": id, "result": result])
                case .handedOff: return
                case .streaming: continue
                }
            } catch let error as RPCError {
                socket.write(["id": id, "error": ["code": error.code, "message": error.description]])
            } catch {
                socket.write(["id": id, "error": ["code": "internal", "message": "\(error)"]])
            }
        }
    }
}
