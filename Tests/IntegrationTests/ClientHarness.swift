import CLinux
import Foundation
import Testing

/// The busybox image as an oci-archive, built once per test run by
/// spec-fixtures/build-oci-image.sh (into a temporary name, then renamed into place).
enum ImageFixture {
    static let reference = "docker.io/library/busybox:srunc"
    static let archive = cachedImageArchive("srunc-fixture-image.tar", script: "build-oci-image.sh")
}

/// An image archive a spec-fixtures script builds, once per machine: kept in the temp
/// directory, renamed into place whole, so a half-built one is never used.
func cachedImageArchive(_ name: String, script: String) -> String {
    let path = NSTemporaryDirectory() + name
    if FileManager.default.fileExists(atPath: path) { return path }
    let partial = path + ".\(getpid())"
    let r = try! execute("/bin/sh", [RuntimeUnderTest.packageRoot + "/spec-fixtures/" + script, partial])
    precondition(r.code == 0, "\(script) failed: \(r.stderr)")
    rename(partial, path)
    return path
}

/// What a client (containerd, podman) left on the host, found and removed after its test: the
/// processes in the test's cgroups, its cgroups, mounts under its directory, and daemons whose
/// command line names its directory. Everything here was started by the test's own client.
enum HostCleanup {
    /// Every cgroup hierarchy mounted under /sys/fs/cgroup (v1 controllers and the unified one).
    static var hierarchies: [String] {
        let root = "/sys/fs/cgroup"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        var seen = Set<String>()
        return names.map { root + "/" + $0 }.filter { path in
            let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            return FileManager.default.fileExists(atPath: real + "/cgroup.procs") && seen.insert(real).inserted
        }
    }

    /// The cgroup directories at and below `relative` in every hierarchy, deepest first.
    static func cgroupDirectories(_ relative: String) -> [String] {
        var dirs: [String] = []
        for h in hierarchies {
            let top = h + "/" + relative
            guard FileManager.default.fileExists(atPath: top) else { continue }
            dirs.append(top)
            let sub = FileManager.default.enumerator(atPath: top)
            while let entry = sub?.nextObject() as? String {
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: top + "/" + entry, isDirectory: &isDir), isDir.boolValue {
                    dirs.append(top + "/" + entry)
                }
            }
        }
        return dirs.sorted { $0.count > $1.count }
    }

    /// Pids of every process in the cgroup tree `relative`.
    static func processes(inCgroup relative: String) -> [pid_t] {
        cgroupDirectories(relative).flatMap { dir in
            ((try? String(contentsOfFile: dir + "/cgroup.procs", encoding: .utf8)) ?? "")
                .split(separator: "\n").compactMap { pid_t($0) }
        }
    }

    /// Kills the processes in the tree (a frozen cgroup is thawed first) and removes it.
    static func removeCgroups(_ relative: String) {
        for dir in cgroupDirectories(relative) where dir.contains("/freezer/") {
            try? "THAWED".write(toFile: dir + "/freezer.state", atomically: false, encoding: .utf8)
        }
        _ = try? eventually("the cgroup \(relative) is empty", seconds: 1) {
            let pids = processes(inCgroup: relative)
            pids.forEach { kill($0, SIGKILL) }
            return pids.isEmpty
        }
        for dir in cgroupDirectories(relative) { rmdir(dir) }
    }

    /// Mount points at or below `dir`, deepest first.
    static func mounts(under dir: String) -> [String] {
        let info = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return info.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { return nil }
            let point = String(fields[4]).replacingOccurrences(of: "\\040", with: " ")
            return point == dir || point.hasPrefix(dir + "/") ? point : nil
        }.sorted { $0.count > $1.count }
    }

    static func unmountAll(under dir: String) {
        for _ in 0..<3 { for point in mounts(under: dir) { umount2(point, Int32(MNT_DETACH)) } }
    }

    /// Pids whose command line contains `marker` (a test's private directory).
    static func processes(mentioning marker: String) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { pid in
            guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).contains(marker)
        }
    }

    /// Gives processes naming `marker` up to ten seconds to exit on their own (a shim winds
    /// down after its last task is deleted); the ones still there.
    static func lingering(mentioning marker: String) -> [pid_t] {
        _ = try? eventually("processes naming \(marker) exit", seconds: 10) { processes(mentioning: marker).isEmpty }
        return processes(mentioning: marker)
    }

    /// The end of a client's test, once the client has removed what it made: kills, unmounts and
    /// removes whatever is left under `dir` and in the cgroup tree `cgroup`, and records an issue
    /// for anything that had to be cleaned by force. `ownMount` names mounts that are the
    /// client's storage rather than a container's.
    static func sweep(dir: String, cgroup: String, client: String, ownMount: (String) -> Bool = { _ in false }) {
        let strayProcesses = lingering(mentioning: dir) + processes(inCgroup: cgroup)
        killAll(mentioning: dir)
        removeCgroups(cgroup)
        let strayMounts = mounts(under: dir).filter { !ownMount($0) }
        unmountAll(under: dir)
        try? FileManager.default.removeItem(atPath: dir)
        #expect(strayProcesses.isEmpty, "processes left by \(client): \(strayProcesses)")
        #expect(strayMounts.isEmpty, "mounts left by \(client): \(strayMounts)")
        #expect(cgroupDirectories(cgroup).isEmpty, "cgroups left by \(client)")
    }

    static func killAll(mentioning marker: String) {
        _ = try? eventually("no process names \(marker)", seconds: 1) {
            let pids = processes(mentioning: marker)
            pids.forEach { kill($0, SIGKILL) }
            return pids.isEmpty
        }
    }
}

/// Runs a client command with a deadline: a client waiting on a runtime that never answers
/// becomes a failed test (exit 137 from timeout's SIGKILL), not a stalled suite.
@discardableResult
func executeClient(_ path: String, _ args: [String], cwd: String? = nil, env: [String: String] = [:],
                   seconds: Int = 60) throws -> Outcome {
    try execute("/usr/bin/timeout", ["-s", "KILL", String(seconds), path] + args, cwd: cwd, env: env)
}

/// A unique name for one test's directory and cgroup parent.
func uniqueTestName(_ kind: String) -> String {
    "srunc-\(kind)-\(getpid())-\(UUID().uuidString.prefix(8).lowercased())"
}
