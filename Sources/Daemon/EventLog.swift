import API
import Foundation
import GRDB
import Logging
import RPC
import Wire

/// An event before it has its sequence number: recorded in the transaction of the change.
struct EventDraft: Sendable {
    var namespace: String
    var type: EventType
    var action: EventAction
    var id: String
    var attributes: [String: String] = [:]
    var exit: ExitStatus?
}

extension Metadata {
    /// Appends an event in the current transaction and trims the window.
    static func append(_ draft: EventDraft, _ db: Database) throws {
        let time = Timestamp.now()
        let event = Event(seq: 0, time: time, namespace: draft.namespace, type: draft.type, action: draft.action, id: draft.id,
                          attributes: draft.attributes, exit: draft.exit)
        let body = String(decoding: try JSONEncoder().encode(event), as: UTF8.self)
        try db.execute(sql: "INSERT INTO events (namespace, timeNanos, body) VALUES (?, ?, ?)", arguments: [draft.namespace, Timestamp.parse(time) ?? 0, body])
        try db.execute(sql: "DELETE FROM events WHERE seq <= ?", arguments: [db.lastInsertedRowID - Metadata.eventWindow])
    }

    /// Up to `limit` events of a namespace after `seq`, oldest first.
    func events(_ ns: String, after seq: Int64, limit: Int) throws -> [Event] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT seq, body FROM events WHERE seq > ? AND namespace = ? ORDER BY seq LIMIT ?", arguments: [seq, ns, limit]).compactMap { row in
                guard var event = try? ValueDecoder(strict: false).decode(Event.self, from: JSONValue.parse(row["body"] as String)) else { return nil }
                event.seq = row["seq"]
                return event
            }
        }
    }

    /// The newest and oldest sequence numbers in the window (0 when empty).
    func eventBounds() throws -> (newest: Int64, oldest: Int64) {
        try db.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) AS newest, COALESCE(MIN(seq), 0) AS oldest FROM events")
            // AUTOINCREMENT keeps rising after the window is trimmed; the sequence table knows the last one given.
            let given = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'events'") ?? 0
            return (max(row?["newest"] ?? 0, given), row?["oldest"] ?? 0)
        }
    }

    /// The seq just before the first event at or after a time.
    func eventSeq(before timeNanos: Int64) throws -> Int64 {
        try db.read { db in
            if let first = try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM events WHERE timeNanos >= ?", arguments: [timeNanos]) { return first - 1 }
            return try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) FROM events") ?? 0
        }
    }
}

/// Wakes subscriptions when events commit. Each subscription has its own thread that reads
/// the window from its cursor and writes to its client: publishing never waits for a reader,
/// a slow reader holds only its own thread, and replay after `since` and live events are one
/// loop, so none is missed or sent twice.
final class EventLog: @unchecked Sendable {
    private let metadata: Metadata
    private let log: Logger
    private let condition = NSCondition()
    private var generation = 0

    init(metadata: Metadata, log: Logger) {
        self.metadata = metadata
        self.log = log
        metadata.eventsCommitted = { [weak self] in self?.committed() }
    }

    private func committed() {
        condition.lock()
        generation += 1
        condition.broadcast()
        condition.unlock()
    }

    /// Blocks until events commit after `seen`, or `timeout` passes; returns the new generation.
    func waitForEvents(after seen: Int, timeout: Double) -> Int {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(timeout)
        while generation == seen && condition.wait(until: deadline) {}
        return generation
    }

    var currentGeneration: Int { condition.lock(); defer { condition.unlock() }; return generation }

    /// Where a subscription starts: the seq after which it sends.
    func start(_ since: EventSince?) throws -> (cursor: Int64, reply: Subscribed) {
        let bounds = try metadata.eventBounds()
        let reply = Subscribed(seq: bounds.newest, oldest: bounds.oldest)
        switch since {
        case nil: return (bounds.newest, reply)
        case .sequence(let n): return (n, reply)
        case .time(let t):
            guard let nanos = Timestamp.parse(t) else { throw APIError.params("params.since: \(t) is not an RFC 3339 time") }
            return (try metadata.eventSeq(before: nanos), reply)
        }
    }

    /// Sends the namespace's events after `cursor` that pass `filter` until `stopped` says so
    /// or the client is gone.
    func stream(_ ns: String, from cursor: Int64, to send: (Event) -> Bool, filter: (Event) -> Bool, stopped: () -> Bool) {
        var cursor = cursor
        var seen = currentGeneration
        while !stopped() {
            let batch: [Event]
            do { batch = try metadata.events(ns, after: cursor, limit: 256) } catch { log.error("events after \(cursor): \(error)"); return }
            for event in batch {
                cursor = event.seq
                if filter(event) && !send(event) { return }
            }
            if batch.count == 256 { continue }
            seen = waitForEvents(after: seen, timeout: 1)
        }
    }
}
