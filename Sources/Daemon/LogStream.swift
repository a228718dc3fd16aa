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
        let consume: (JSONValue) -> Bool = { message in
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
        let end: JSONValue
        let link = daemon.shim(container.id)
        if link.isAlive {
            end = try link.call("logs", .object([("follow", .bool(params.follow == true))]), onEvent: consume)
        } else {
            // No shim (it died, or the container was never started): the files are all there is.
            for record in LogFiles(path: daemon.logPath(container.id)) where !consume(.object([("record", record)])) { break }
            end = .object([("end", .string(container.status == .exited ? "exited" : "eof"))])
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

/// A container's log files read directly, oldest rotation first: for a container whose shim
/// is gone. Lines that are not records (a torn last line) are skipped.
struct LogFiles: Sequence {
    let path: String

    func makeIterator() -> AnyIterator<JSONValue> {
        var files = (1...16).reversed().map { "\(path).\($0)" }.filter { FileManager.default.fileExists(atPath: $0) } + [path]
        var lines: [Substring] = []
        var text = ""
        return AnyIterator {
            while true {
                if !lines.isEmpty {
                    if let record = try? JSONValue.parse(String(lines.removeFirst())), record["time"] != nil { return record }
                    continue
                }
                guard !files.isEmpty else { return nil }
                text = (try? String(contentsOfFile: files.removeFirst(), encoding: .utf8)) ?? ""
                lines = text.split(separator: "\n")[...].map { $0 }
            }
        }
    }
}
