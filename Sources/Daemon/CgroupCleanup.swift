import Foundation

/// Removes a container's cgroup in every mounted hierarchy, after killing whatever is still
/// in it: the backstop for a runtime that was killed before it could clean up (the daemon
/// chose the path, so it may remove it).
enum CgroupCleanup {
    /// The mount points of cgroup (v1) and cgroup2 file systems.
    static func mounts() -> [String] {
        let info = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return info.split(separator: "\n").compactMap { line in
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2, let fstype = halves[1].split(separator: " ").first, fstype == "cgroup" || fstype == "cgroup2" else { return nil }
            let fields = halves[0].split(separator: " ")
            return fields.count > 4 ? String(fields[4]) : nil
        }
    }

    /// Removes `relative` (and anything below it) in each hierarchy; the paths that stayed.
    static func remove(_ relative: String) -> [String] {
        var left: [String] = []
        for mount in mounts() {
            let dir = mount + relative
            guard FileManager.default.fileExists(atPath: dir) else { continue }
            if !removeTree(dir) { left.append(dir) }
        }
        return left
    }

    /// Deepest first; a cgroup whose processes are still exiting is tried again for a while.
    private static func removeTree(_ dir: String) -> Bool {
        let children = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter {
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir + "/" + $0, isDirectory: &isDir) && isDir.boolValue
        }
        for child in children { _ = removeTree(dir + "/" + child) }
        for _ in 0..<100 {
            if rmdir(dir) == 0 || errno == ENOENT { return true }
            guard errno == EBUSY else { return false }
            let procs = (try? String(contentsOfFile: dir + "/cgroup.procs", encoding: .utf8)) ?? ""
            for pid in procs.split(separator: "\n").compactMap({ pid_t($0) }) { kill(pid, SIGKILL) }
            usleep(10_000)
        }
        return false
    }
}
