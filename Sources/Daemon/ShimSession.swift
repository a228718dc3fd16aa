import API
import Foundation
import RPC
import Wire

/// An attach or exec relayed between a client connection and the container's shim. The
/// session owns its shim socket: `relay` (on its own thread) is its only reader and closes it
/// when the session ends; the client connection writes `stream.*` requests into it through
/// `forward`, which is refused once the session has ended.
final class ShimSession: @unchecked Sendable {
    enum Kind { case attach, exec }
    let kind: Kind
    private let shimSocket: LineSocket
    private let client: Connection
    private let requestID: JSONValue
    private let lock = NSLock()
    private var ended = false
    /// The id our own first request to the shim carries.
    private static let firstID = JSONValue.string("scontainerd-session")
    /// Client requests sent on to the shim whose replies end the session (detach).
    private var detachIDs: [JSONValue] = []

    /// Connects to the shim and sends it the attach or exec request.
    init(kind: Kind, shim: ShimLink, client: Connection, requestID: JSONValue, params: JSONValue) throws {
        do { shimSocket = try LineSocket.connect(shim.socketPath) } catch {
            throw APIError(.unavailable, "the container's shim is not reachable: \(error)")
        }
        self.kind = kind
        self.client = client
        self.requestID = requestID
        let method = kind == .attach ? "attach" : "exec"
        shimSocket.write(.object([("id", ShimSession.firstID), ("method", .string(method)), ("params", params)]))
    }

    /// Relays the shim's lines to the client, as the API's notices and replies, until the
    /// session ends: the exec's exit, the attach's exit or detach, a shim error, a hang-up.
    /// Returns the session's last line, for the connection to send once the session is gone.
    func relay() -> [UInt8]? {
        var replied = false
        defer {
            lock.lock()
            ended = true
            lock.unlock()
            shimSocket.close()
        }
        while let message = shimSocket.readValue() {
            if let id = message["id"], id != ShimSession.firstID {
                client.send(message["error"].map { Line.error(id, ShimLink.apiError($0)) } ?? Line.result(id, message["result"] ?? .object([])))
                // Detached: the container goes on; the client has the reply, and the session ends.
                if isDetach(id) { return nil }
                continue
            }
            if message["id"] == ShimSession.firstID {
                if let error = message["error"] {
                    return replied ? Line.notice(requestID, ExitStatus(code: 126)) : Line.error(requestID, ShimLink.apiError(error))
                }
                let result = message["result"] ?? .object([])
                if kind == .attach {
                    client.send(Line.result(requestID, AttachStarted(terminal: result["terminal"]?.bool ?? false, stdin: result["stdin"]?.bool ?? false)))
                    replied = true
                    continue
                }
                // The exec's final reply: its exit.
                if !replied { client.send(Line.result(requestID, ExecStarted(pid: result["pid"]?.int ?? 0))) }
                return Line.notice(requestID, ExitStatus(code: result["exitCode"]?.int ?? -1, signal: result["signal"]?.int))
            }
            switch message["event"]?.string {
            case "started":
                client.send(Line.result(requestID, ExecStarted(pid: message["pid"]?.int ?? 0)))
                replied = true
            case "output":
                let stream = Output.Stream(rawValue: message["stream"]?.string ?? "") ?? .stdout
                if !client.send(Line.notice(requestID, Output(stream: stream, data: message["data"]?.string ?? ""))) { return nil }
            case "exit":
                return Line.notice(requestID, message["exit"].flatMap(ShimLink.exitStatus) ?? ExitStatus(code: -1))
            default:
                continue
            }
        }
        return replied ? nil : Line.error(requestID, APIError(.unavailable, "the shim closed the connection"))
    }

    private func isDetach(_ id: JSONValue) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return detachIDs.contains(id)
    }

    /// Sends a client's stream.* request on to the shim; false once the session has ended.
    func forward(_ request: Request) -> Bool {
        let method: String
        switch request.method {
        case .streamStdin: method = "stdin"
        case .streamCloseStdin: method = "closeStdin"
        case .streamResize: method = "resize"
        case .streamDetach: method = "detach"
        default: return false
        }
        lock.lock()
        defer { lock.unlock() }
        guard !ended else { return false }
        if request.method == .streamDetach { detachIDs.append(request.id) }
        return shimSocket.write(.object([("id", request.id), ("method", .string(method)), ("params", request.params)]))
    }

    /// Ends the session from the client's side (it has gone): wakes `relay`.
    func hangUp() { shimSocket.shutdownBoth() }
}
