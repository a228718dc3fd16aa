import API
import Foundation
import Wire

/// container.logs: records filtered by cursor, since and until, the last `tail` kept, each
/// sent as a `log` notice carrying its cursor. Without `follow` the files are read here and
/// each record's line is passed on as it is, with its cursor spliced in (no decoding or
/// re-encoding: a large log costs what reading it costs); a follow goes through the shim,
/// which sends the whole log and then new records as they are written.
struct LogStream {
    let daemon: Daemon
    let params: LogsParams
    let container: Metadata.ContainerRow
    /// The most records `tail` may keep in memory.
    static let maxTail = 1_000_000
    /// Bytes of notices gathered before one write to the client.
    static let batchBytes = 256 << 10

    func send(to connection: Connection, id: JSONValue) throws -> LogsEnd {
        if let tail = params.tail { guard (0...LogStream.maxTail).contains(tail) else { throw APIError.params("params.tail: a count from 0 to \(LogStream.maxTail)") } }
        var filter = RecordFilter(after: try params.cursor.map { try LogCursor(parsing: $0) },
                                  since: try params.since.map { try time($0, field: "since") },
                                  until: try params.until.map { try time($0, field: "until") })
        guard params.follow == true else { return try fromFiles(filter, tail: params.tail, connection, id) }
        // Following goes on across the runs a restart policy (or a start) adds to the same log:
        // each run's shim replays the file, and the cursor skips what was sent.
        var tail = params.tail
        var pid = container.pid
        while true {
            let link = daemon.shim(container.id)
            guard link.isAlive else {
                // Between two runs: follow the next; exited for good: what the files hold.
                guard let c = try? daemon.metadata.container(id: container.id), c.status == .restarting, let next = nextRun(after: c.pid) else {
                    return try fromFiles(filter, tail: tail, connection, id)
                }
                pid = next
                continue
            }
            let end = try follow(link, filter, tail: tail, connection, id)
            guard end.end == .exited, let next = nextRun(after: pid) else { return end }
            pid = next
            tail = nil
            filter = RecordFilter(after: try end.cursor.map { try LogCursor(parsing: $0) }, since: filter.since, until: filter.until)
        }
    }

    /// The init pid of the container's next run once it is running, or nil when it has exited
    /// for good (or is gone). Woken by the events each change commits.
    private func nextRun(after pid: Int?) -> Int? {
        var seen = daemon.events.currentGeneration
        while let c = try? daemon.metadata.container(id: container.id) {
            if c.status.isLive && c.pid != pid { return c.pid }
            if c.status == .exited || c.status == .created {
                daemon.lock.lock(); let watching = daemon.monitored.contains(c.id); daemon.lock.unlock()
                if !watching { return nil }
            }
            seen = daemon.events.waitForEvents(after: seen, timeout: 0.1)
        }
        return nil
    }

    private func fromFiles(_ start: RecordFilter, tail: Int?, _ connection: Connection, _ id: JSONValue) throws -> LogsEnd {
        var filter = start
        let reader = LogFileReader(files: LogFileReader.files(of: daemon.logPath(container.id), keep: 3), tail: nil)
        defer { reader.close() }
        var prefix = Array(#"{"id":"#.utf8)
        id.write(to: &prefix)
        prefix += Array(#","log":"#.utf8)
        var window = TailWindow<[UInt8]>(size: tail)
        var batch: [UInt8] = []
        var last = start.after?.description ?? params.cursor
        func flush() throws {
            guard !batch.isEmpty else { return }
            batch.removeLast()  // the socket adds the last newline
            guard connection.send(batch) else { throw APIError(.unavailable, "the client has gone") }
            batch.removeAll(keepingCapacity: true)
        }
        while true {
            let lines = reader.next(budget: LogStream.batchBytes)
            if lines.isEmpty { break }
            for line in lines {
                // `{"time":"…",…}\n` as the shim writes it; anything else (a torn line) is skipped.
                guard line.count > 12, line[line.count - 2] == UInt8(ascii: "}"), let t = LogStream.recordTime(line),
                      let cursor = filter.accept(t) else { continue }
                var notice = prefix
                notice += line[..<(line.count - 2)]
                notice += Array(#","cursor":""#.utf8) + Array(cursor.utf8) + Array("\"}}\n".utf8)
                last = cursor
                if window.size != nil { window.add(notice); continue }
                batch += notice
                if batch.count >= LogStream.batchBytes { try flush() }
            }
        }
        for notice in window.current {
            batch += notice
            if batch.count >= LogStream.batchBytes { try flush() }
        }
        try flush()
        let exited = (try daemon.metadata.container(id: container.id))?.status == .exited
        return LogsEnd(end: exited ? .exited : .eof, cursor: last)
    }

    private func follow(_ link: ShimLink, _ start: RecordFilter, tail: Int?, _ connection: Connection, _ id: JSONValue) throws -> LogsEnd {
        var filter = start
        var last = start.after?.description ?? params.cursor
        // Records held back for `tail` until the shim has read the whole file.
        var window = TailWindow<LogRecord>(size: tail)
        func emit(_ record: LogRecord) -> Bool {
            last = record.cursor
            return connection.send(Line.notice(id, record))
        }
        let end = try link.call("logs", .object([("follow", .bool(true))])) { message in
            if message["event"]?.string == "caught-up" {
                let held = window.current
                window = TailWindow(size: nil)
                return held.allSatisfy(emit)
            }
            guard let r = message["record"], let timeText = r["time"]?.string, let t = Timestamp.parse(timeText),
                  let cursor = filter.accept(t) else { return true }
            let record = LogRecord(time: timeText, stream: Output.Stream(rawValue: r["stream"]?.string ?? "") ?? .stdout, log: r["log"]?.string,
                                   b64: r["b64"]?.string, partial: r["partial"]?.bool, cursor: cursor)
            if window.size != nil { window.add(record); return true }
            return emit(record)
        }
        guard window.current.allSatisfy(emit) else { throw APIError(.unavailable, "the client has gone") }
        return LogsEnd(end: end["end"]?.string == "exited" ? .exited : .eof, cursor: last)
    }

    /// The time of a record line, read from its first member without parsing the rest.
    static func recordTime(_ line: [UInt8]) -> Int64? {
        let head = Array(#"{"time":""#.utf8)
        guard line.count > head.count, line[..<head.count].elementsEqual(head),
              let end = line[head.count...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return Timestamp.parse(bytes: line[head.count..<end])
    }

    private func time(_ text: String, field: String) throws -> Int64 {
        guard let t = Timestamp.parse(text) else { throw APIError.params("params.\(field): \(text) is not an RFC 3339 time") }
        return t
    }
}

/// Which records pass: after the cursor, at or after `since`, before `until`; it counts
/// records per timestamp as it goes, which is what a cursor names.
struct RecordFilter {
    let after: LogCursor?
    let since: Int64?
    let until: Int64?
    private var position = LogCursor(timeNanos: 0, count: 0)

    init(after: LogCursor?, since: Int64?, until: Int64?) { self.after = after; self.since = since; self.until = until }

    /// The record's cursor if it passes, nil if not. Call once per record, in log order.
    mutating func accept(_ t: Int64) -> String? {
        position = t == position.timeNanos ? LogCursor(timeNanos: t, count: position.count + 1) : LogCursor(timeNanos: t, count: 1)
        if let after, position.timeNanos < after.timeNanos || (position.timeNanos == after.timeNanos && position.count <= after.count) { return nil }
        if let since, t < since { return nil }
        if let until, t >= until { return nil }
        return position.description
    }
}

/// The last `size` items added (all of them when `size` is nil).
struct TailWindow<T> {
    let size: Int?
    private var items: [T] = []

    init(size: Int?) { self.size = size }

    mutating func add(_ item: T) {
        items.append(item)
        // Trim in halves: amortized O(1) per item rather than a shift per item.
        if let size, items.count >= 2 * max(size, 1) { items.removeFirst(items.count - size) }
    }

    var current: [T] { size.map { Array(items.suffix($0)) } ?? items }
}
