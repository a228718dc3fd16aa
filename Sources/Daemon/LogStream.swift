import API
import Foundation
import Wire

/// container.logs: the shim's records (its whole log, so every record's cursor counts from
/// the start), filtered by cursor, since and until, the last `tail` kept, each sent as a
/// `log` notice carrying its cursor.
struct LogStream {
    let daemon: Daemon
    let params: LogsParams
    let container: Metadata.ContainerRow
    /// The most records `tail` may keep in memory.
    static let maxTail = 1_000_000

    func send(to connection: Connection, id: JSONValue) throws -> LogsEnd {
        let after = try params.cursor.map { try LogCursor(parsing: $0) }
        let since = try params.since.map { try time($0, field: "since") }
        let until = try params.until.map { try time($0, field: "until") }
        if let tail = params.tail { guard (0...LogStream.maxTail).contains(tail) else { throw APIError.params("params.tail: a count from 0 to \(LogStream.maxTail)") } }
        var position = LogCursor(timeNanos: 0, count: 0)
        var last = params.cursor
        // Records held back for `tail` until the end of the existing log (then live ones flow).
        var held: [LogRecord] = []
        var holding = params.tail != nil
        func emit(_ record: LogRecord) -> Bool {
            last = record.cursor
            return connection.send(Line.notice(id, record))
        }
        let shimParams = JSONValue.object([("follow", .bool(params.follow == true))])
        let end = try daemon.shim(container.id).call("logs", shimParams) { message in
            if message["event"]?.string == "caught-up" {
                // The log file is read; live records follow: the tail window is complete.
                holding = false
                for record in held where !emit(record) { return false }
                held = []
                return true
            }
            guard let r = message["record"], let timeText = r["time"]?.string, let t = Timestamp.parse(timeText) else { return true }
            position = t == position.timeNanos ? LogCursor(timeNanos: t, count: position.count + 1) : LogCursor(timeNanos: t, count: 1)
            if let after, position.timeNanos < after.timeNanos || (position.timeNanos == after.timeNanos && position.count <= after.count) { return true }
            if let since, t < since { return true }
            if let until, t >= until { return true }
            let record = LogRecord(time: timeText, stream: Output.Stream(rawValue: r["stream"]?.string ?? "") ?? .stdout, log: r["log"]?.string,
                                   b64: r["b64"]?.string, partial: r["partial"]?.bool, cursor: position.description)
            if holding, let tail = params.tail {
                held.append(record)
                if held.count > tail { held.removeFirst(held.count - tail) }
                return true
            }
            return emit(record)
        }
        if holding { for record in held where !emit(record) { break } }
        holding = false
        return LogsEnd(end: end["end"]?.string == "exited" ? .exited : .eof, cursor: last)
    }

    private func time(_ text: String, field: String) throws -> Int64 {
        guard let t = Timestamp.parse(text) else { throw APIError.params("params.\(field): \(text) is not an RFC 3339 time") }
        return t
    }
}
