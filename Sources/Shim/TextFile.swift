@preconcurrency import Glibc

/// Small text files the shim reads without Foundation: pid files, /proc and cgroup files, the
/// runtime's log and captured output.
enum TextFile {
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return rest(of: fd)
    }

    /// A pid written by the runtime (`--pid-file`); nil when absent or not a pid.
    static func pid(_ path: String) -> pid_t? {
        read(path).flatMap { pid_t($0.trimmingCharacters(in: " \n")) }.flatMap { $0 > 0 ? $0 : nil }
    }

    /// The rest of a file from its current offset.
    static func rest(of fd: Int32) -> String {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = Glibc.read(fd, &buf, buf.count)
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
