import API
import CLinux
import Foundation
import Wire

/// An orchestrator's client of scontainerd: the API target's types over a raw socket, with a
/// timeout on every read. Not sctr: this is how a program would drive the daemon.
final class RPCClient {
    let fd: Int32
    let namespace: String?
    private var reader = TimedLineReader()
    private var nextID = 1

    init(path: String, namespace: String? = nil) throws {
        do { fd = try UnixSocket.connect(path: path) } catch { throw ClientError(error.description) }
        self.namespace = namespace
    }

    deinit { close(fd) }

    func sendLine(_ bytes: [UInt8]) {
        let line = bytes + [0x0a]
        _ = line.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Sends a request; returns its id.
    @discardableResult
    func send<C: Call>(_ call: C.Type, _ params: C.Params) -> Int {
        let id = nextID
        nextID += 1
        sendLine(Line.request(id: .number(Double(id)), method: C.method, namespace: namespace, params: params))
        return id
    }

    /// The next line, waiting at most `seconds`; nil when the daemon closed the connection.
    func next(seconds: Double = 30) throws -> ServerLine? {
        guard let line = try reader.line(fd, seconds: seconds) else { return nil }
        guard let parsed = ServerLine(line) else { throw ClientError("not a JSON object: \(String(decoding: line, as: UTF8.self))") }
        return parsed
    }

    /// Reads until the final line of request `id`; the notices of that request before it.
    func final(_ id: Int, seconds: Double = 30) throws -> (ServerLine, [ServerLine]) {
        var notices: [ServerLine] = []
        while let line = try next(seconds: seconds) {
            guard line.id == .number(Double(id)) else { continue }
            if line.isFinal { return (line, notices) }
            notices.append(line)
        }
        throw ClientError("the daemon closed the connection before answering \(id)")
    }

    /// A call and its result; an error reply is thrown as the APIError.
    @discardableResult
    func call<C: Call>(_ call: C.Type, _ params: C.Params, seconds: Double = 30) throws -> C.Result {
        try final(send(call, params), seconds: seconds).0.result(call)
    }

    /// The error code a call is answered with (nil if it succeeded).
    func errorOf<C: Call>(_ call: C.Type, _ params: C.Params) throws -> APIError? {
        try final(send(call, params)).0.error
    }

    /// A raw line and the error reply it gets.
    func errorOf(line: String) throws -> APIError? {
        sendLine(Array(line.utf8))
        guard let reply = try next() else { throw ClientError("closed") }
        return reply.error
    }
}
