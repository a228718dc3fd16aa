import OCI

public struct LogsParams: Codable, Sendable {
    public var id: String
    /// Keep sending new records until the container exits.
    public var follow: Bool?
    /// Only the last N records (before `since`/`until` are applied to what is left).
    public var tail: Int?
    /// Records at or after this time (RFC 3339).
    public var since: String?
    /// Records before this time (RFC 3339).
    public var until: String?
    /// Resume after the record that carried this cursor: no record missed or repeated.
    public var cursor: String?
    public init(id: String) { self.id = id }
}

/// One log record, as the shim wrote it, with the cursor that resumes after it.
public struct LogRecord: Notice, Equatable {
    public static let key = NoticeKey.log
    public var time: String
    public var stream: Output.Stream
    /// The text, when it is UTF-8.
    public var log: String?
    /// The bytes in base64, when they are not.
    public var b64: String?
    /// A piece of a longer line, or the end of a stream without a newline.
    public var partial: Bool?
    public var cursor: String
    public init(time: String, stream: Output.Stream, log: String?, b64: String?, partial: Bool?, cursor: String) {
        self.time = time; self.stream = stream; self.log = log; self.b64 = b64; self.partial = partial; self.cursor = cursor
    }
}

public struct LogsEnd: Codable, Sendable {
    public enum Reason: String, Codable, Sendable { case eof, exited }
    /// `eof`: every record so far was sent; `exited`: a follow ended with the container.
    public var end: Reason
    /// The last record's cursor (the one given, if nothing was sent).
    public var cursor: String?
    public init(end: Reason, cursor: String?) { self.end = end; self.cursor = cursor }
}

/// A position in a container's log: the time of a record and how many records with that
/// very time came before it and including it (one read of output shares a timestamp).
public struct LogCursor: Sendable, Equatable, CustomStringConvertible {
    public var timeNanos: Int64
    public var count: Int
    public var description: String { "\(timeNanos)-\(count)" }

    public init(timeNanos: Int64, count: Int) { self.timeNanos = timeNanos; self.count = count }

    public init(parsing text: String) throws(APIError) {
        let parts = text.split(separator: "-")
        guard parts.count == 2, let t = Int64(parts[0]), let n = Int(parts[1]), n > 0 else { throw .params("cursor: \(ReferenceError.shown(text)) is not a log cursor") }
        timeNanos = t; count = n
    }
}
