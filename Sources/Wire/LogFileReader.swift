@preconcurrency import Glibc

/// Reads the log's record lines back in order, a bounded batch at a time, so a `logs`
/// request over a large log never holds it all in memory at once.
public final class LogFileReader {
    private var files: [String]
    private var fd: Int32 = -1
    private var carry: [UInt8] = []
    /// Records to skip before the first one sent (for tail).
    private var skip: Int

    public init(files: [String], tail: Int?) {
        self.files = files
        if let tail {
            let total = files.reduce(0) { $0 + LogFileReader.countLines($1) }
            skip = max(0, total - tail)
        } else {
            skip = 0
        }
    }

    /// Up to about `budget` bytes of whole record lines; empty at the end.
    public func next(budget: Int) -> [[UInt8]] {
        var records: [[UInt8]] = []
        var used = 0
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        while used < budget {
            if fd < 0 {
                guard !files.isEmpty else { break }
                fd = open(files.removeFirst(), O_RDONLY | O_CLOEXEC)
                continue
            }
            let n = read(fd, &buf, buf.count)
            if n <= 0 { Glibc.close(fd); fd = -1; carry.removeAll(); continue }
            var start = 0
            for i in 0..<n where buf[i] == 0x0a {
                var line = carry
                line.append(contentsOf: buf[start...i])
                carry.removeAll(keepingCapacity: true)
                start = i + 1
                if skip > 0 { skip -= 1; continue }
                used += line.count
                records.append(line)
            }
            carry.append(contentsOf: buf[start..<n])
        }
        return records
    }

    public func close() { if fd >= 0 { Glibc.close(fd); fd = -1 }; files.removeAll() }

    public static func countLines(_ path: String) -> Int {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { Glibc.close(fd) }
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        var count = 0
        while true {
            let n = read(fd, &buf, buf.count)
            if n <= 0 { return count }
            for i in 0..<n where buf[i] == 0x0a { count += 1 }
        }
    }
}

extension LogFileReader {
    /// A log's files oldest first: `PATH.N` … `PATH.1` (those that exist), then `PATH`.
    public static func files(of path: String, keep: Int) -> [String] {
        var list: [String] = []
        if keep > 1 {
            for k in stride(from: keep - 1, through: 1, by: -1) where access("\(path).\(k)", F_OK) == 0 { list.append("\(path).\(k)") }
        }
        list.append(path)
        return list
    }
}
