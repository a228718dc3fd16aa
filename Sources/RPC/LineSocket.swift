import CLinux
import Foundation
import Wire

/// A blocking unix stream socket carrying one JSON object per line: the daemon's clients,
/// its links to shims, and the sctr client's link to the daemon. Writes are serialized, so event threads may share it.
public final class LineSocket: @unchecked Sendable {
    public let fd: Int32
    private var buffer: [UInt8] = []
    /// The first unread byte of `buffer`, and how many after it are known to hold no newline.
    private var start = 0
    private var scanned = 0
    private var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    private let writeLock = NSLock()
    /// Guards `closed`: shutdown and close never touch a number that was already closed.
    private let stateLock = NSLock()
    private var isClosed = false
    /// Set when `readLine` gave up on a line longer than its limit.
    public private(set) var overflowed = false
    public var closed: Bool { stateLock.lock(); defer { stateLock.unlock() }; return isClosed }

    public init(fd: Int32) { self.fd = fd }

    /// Connects to a socket path.
    public static func connect(_ path: String) throws -> LineSocket {
        do { return LineSocket(fd: try UnixSocket.connect(path: path)) } catch { throw LineSocketError(error.description) }
    }

    /// The next line without its newline; nil at EOF, or past `maxLength` without a newline.
    /// Each byte is scanned once and consumed lines are dropped in bulk: a long line or a
    /// fast stream of short ones costs time in proportion to its bytes.
    public func readLine(maxLength: Int = 16 << 20) -> [UInt8]? {
        while true {
            if let nl = buffer[(start + scanned)...].firstIndex(of: 0x0a) {
                let line = Array(buffer[start..<nl])
                start = nl + 1
                scanned = 0
                if start >= 1 << 16 && start * 2 >= buffer.count {
                    buffer.removeSubrange(..<start)
                    start = 0
                }
                return line
            }
            scanned = buffer.count - start
            if scanned > maxLength { overflowed = true; return nil }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// Whether a whole line is already read and waiting (the next readLine will not block).
    public var hasBufferedLine: Bool { buffer[start...].contains(0x0a) }

    /// The next line parsed as JSON; nil at EOF. A line that is not JSON reads as `.null`.
    public func readValue() -> JSONValue? {
        guard let line = readLine() else { return nil }
        return (try? JSONValue.parse(line)) ?? .null
    }

    /// Sends one line; with `dontWait`, gives up (false) rather than block on a full socket
    /// (events to a subscriber that stopped reading must not stall whoever published them).
    @discardableResult
    public func write(line: [UInt8], dontWait: Bool = false) -> Bool {
        writeLock.lock()
        defer { writeLock.unlock() }
        // After close the number may already name another file: never send on it.
        guard !closed else { return false }
        var data = line
        data.append(0x0a)
        var done = 0
        let flags = Int32(MSG_NOSIGNAL) | (dontWait ? Int32(MSG_DONTWAIT) : 0)
        while done < data.count {
            let n = data.withUnsafeBytes { send(fd, $0.baseAddress! + done, $0.count - done, flags) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
        }
        return true
    }

    @discardableResult
    public func write(_ value: JSONValue, dontWait: Bool = false) -> Bool {
        var bytes: [UInt8] = []
        value.write(to: &bytes)
        return write(line: bytes, dontWait: dontWait)
    }

    /// Ends both directions, waking a thread blocked reading this socket.
    /// Never takes the write lock: it is what wakes a writer blocked on a full socket.
    public func shutdownBoth() {
        stateLock.lock()
        defer { stateLock.unlock() }
        if !isClosed { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
    }

    /// Closes once: wakes any blocked writer, waits for writers to finish, then closes, so no
    /// writer or shutdown ever acts on a reused fd number.
    public func close() {
        shutdownBoth()
        writeLock.lock()
        defer { writeLock.unlock() }
        stateLock.lock()
        defer { stateLock.unlock() }
        guard !isClosed else { return }
        isClosed = true
        Glibc.close(fd)
    }

    deinit { if !isClosed { Glibc.close(fd) } }
}

/// A socket that could not be reached.
public struct LineSocketError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
