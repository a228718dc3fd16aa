@preconcurrency import Glibc
import CLinux
import Wire

/// How the container's init ended, as the `exit` file and `wait` report it: the code a shell
/// would show (128+signal when killed), the signal, whether the OOM killer was involved.
struct ExitRecord {
    let code: Int
    let signal: Int?
    let oomKilled: Bool
    let time: String

    init(status: Int32, oomKilled: Bool) {
        if cl_wifsignaled(status) != 0 {
            signal = Int(cl_wtermsig(status))
            code = 128 + Int(cl_wtermsig(status))
        } else {
            signal = nil
            code = Int(cl_wexitstatus(status))
        }
        self.oomKilled = oomKilled
        time = Timestamp.now()
    }

    var json: JSONValue {
        var members: [(String, JSONValue)] = [("code", .number(Double(code)))]
        if let signal { members.append(("signal", .number(Double(signal)))) }
        members += [("oomKilled", .bool(oomKilled)), ("time", .string(time))]
        return .object(members)
    }

    /// Written to a temp file, then renamed over `path`: a reader sees the whole record or none.
    /// Not synced: the record must outlive the daemon and the shim, not the host (whose crash
    /// ends the container too); a sync here delayed every exit report by 1-15 ms.
    func write(to path: String) throws(ShimError) {
        let temp = path + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw ShimError.sys("open \(temp)") }
        let text = Array((json.serialized + "\n").utf8)
        let n = text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard n == text.count, rename(temp, path) == 0 else { throw ShimError.sys("write \(path)") }
    }
}

/// Counts OOM kills in the container's memory cgroup (v1 memory.oom_control or v2
/// memory.events), found from the init's /proc/<pid>/cgroup while it runs.
struct OOMCounter {
    let file: String?

    init(file: String?) { self.file = file }

    init(pid: pid_t) {
        let text = TextFile.read("/proc/\(pid)/cgroup") ?? ""
        var found: String?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[1].split(separator: ",").contains("memory") {
                found = "/sys/fs/cgroup/memory\(parts[2])/memory.oom_control"
                break
            }
            if parts[0] == "0" && parts[1].isEmpty, access("/sys/fs/cgroup\(parts[2])/memory.events", R_OK) == 0 {
                found = "/sys/fs/cgroup\(parts[2])/memory.events"
            }
        }
        file = found
    }

    /// The `oom_kill` count now (0 when unknown).
    func kills() -> Int {
        guard let file, let text = TextFile.read(file) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") {
            return Int(line.dropFirst(9)) ?? 0
        }
        return 0
    }
}
