import Foundation
import Logging
import Wire

/// swift-log's handler for the daemon's own log file: one line per message, appended, with
/// an RFC 3339 time, the level and the metadata. swift-log ships a stream handler for
/// stderr only; the file needs this small one. Writes are serialized (connections log from
/// their own threads) and each line is one write(2), so lines never interleave.
public struct FileLogHandler: LogHandler {
    private let fd: Int32
    private let lock: NSLock
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public let label: String

    /// Opens (creates, appends to) `path`, mode 0600.
    public init(label: String, path: String, level: Logger.Level) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        lock = NSLock()
        logLevel = level
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        let context = fields.isEmpty ? "" : " " + fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line = Array("\(Timestamp.now()) \(event.level) \(label):\(context) \(event.message)\n".utf8)
        lock.lock()
        defer { lock.unlock() }
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}
