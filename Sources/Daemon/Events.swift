import Foundation
import RPC

/// Fans daemon events (container created/started/died/removed, image imported/removed) out
/// to the connections that called events.subscribe.
final class EventBus: @unchecked Sendable {
    private let lock = NSLock()
    private var subscribers: [ObjectIdentifier: LineSocket] = [:]

    func subscribe(_ socket: LineSocket) {
        lock.lock(); defer { lock.unlock() }
        subscribers[ObjectIdentifier(socket)] = socket
    }

    func unsubscribe(_ socket: LineSocket) {
        lock.lock(); defer { lock.unlock() }
        subscribers[ObjectIdentifier(socket)] = nil
    }

    func publish(_ type: String, _ action: String, id: String, attributes: [String: Any] = [:]) {
        let event: [String: Any] = ["event": [
            "type": type, "action": action, "id": id, "time": Metadata.now(), "attributes": attributes,
        ] as [String: Any]]
        lock.lock()
        let targets = Array(subscribers.values)
        lock.unlock()
        // A subscriber whose socket is full is cut off: events never wait for a slow reader.
        for socket in targets where !socket.write(event, dontWait: true) {
            unsubscribe(socket)
            socket.shutdownBoth()
        }
    }
}
