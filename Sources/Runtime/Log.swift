@preconcurrency import Glibc
import Wire

/// runc-compatible error logging: the message always goes to stderr, and with --log also to
/// that file, as a JSON line {"level","msg","time"} (what go-runc parses) or logfmt text.
public struct Log: Sendable {
    public var path: String?
    public var json = false
    public var debug = false
    public init() {}

    /// The invocation's log, set once by main before any work: the runtime's steps report to it.
    nonisolated(unsafe) public static var shared = Log()

    /// Creates the --log file up front, as runc does on every verb (clients look for it).
    public func create() {
        guard let path else { return }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        if fd >= 0 { close(fd) }
    }

    public func error(_ message: String) {
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
        guard let path else { return }
        append(path, level: "error", message)
    }

    /// With --debug: to the --log file, or to stderr without one (as runc).
    public func debugLine(_ message: String) {
        guard debug else { return }
        if let path { append(path, level: "debug", message) } else { write(to: 2, level: "debug", message) }
    }

    /// runc's step logging, from anywhere in the runtime.
    static func debug(_ message: @autoclosure () -> String) {
        if shared.debug { shared.debugLine(message()) }
    }

    private func append(_ path: String, level: String, _ message: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        write(to: fd, level: level, message)
        close(fd)
    }

    private func write(to fd: Int32, level: String, _ message: String) {
        let time = Timestamp.now()
        let text = json
            ? "{\"level\":\"\(level)\",\"msg\":\(Log.quote(message)),\"time\":\"\(time)\"}\n"
            : "time=\"\(time)\" level=\(level) msg=\(Log.quote(message))\n"
        try? Files.writeAll(fd, Array(text.utf8))
    }

    /// A JSON string literal (also valid logfmt quoting).
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
