import API
import Foundation
import RPC
import Wire

/// The daemon's RPC as typed calls over one connection each.
struct Client {
    let socketPath: String
    let namespace: String

    func connect() throws -> LineSocket {
        do { return try LineSocket.connect(socketPath) } catch {
            throw APIError(.unavailable, "cannot connect to the daemon at \(socketPath): \(error)")
        }
    }

    /// One request; lines before its reply (progress, log records) go to `onLine`.
    @discardableResult
    func call<C: Call>(_ call: C.Type, _ params: C.Params, onLine: ((ServerLine) -> Void)? = nil) throws -> C.Result {
        let socket = try connect()
        defer { socket.close() }
        return try self.call(call, params, on: socket, onLine: onLine)
    }

    /// The same on a connection the caller keeps (attach, exec, events).
    func call<C: Call>(_ call: C.Type, _ params: C.Params, on socket: LineSocket, id: Int = 1, onLine: ((ServerLine) -> Void)? = nil) throws -> C.Result {
        send(call, params, on: socket, id: id)
        while let bytes = socket.readLine() {
            guard let line = ServerLine(bytes) else { continue }
            if line.id == .number(Double(id)) && line.isFinal { return try line.result(call) }
            onLine?(line)
        }
        throw APIError(.unavailable, "the daemon closed the connection")
    }

    func send<C: Call>(_ call: C.Type, _ params: C.Params, on socket: LineSocket, id: JSONValue) {
        socket.write(line: Line.request(id: id, method: C.method, namespace: namespace, params: params))
    }

    func send<C: Call>(_ call: C.Type, _ params: C.Params, on socket: LineSocket, id: Int) {
        send(call, params, on: socket, id: .number(Double(id)))
    }
}
