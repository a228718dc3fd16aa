import CLinux
import Foundation
import Testing

/// The images the daemon tests import, built once per run by spec-fixtures/build-test-images.py.
enum TestImages {
    static let dir: String = {
        let path = NSTemporaryDirectory() + "srunc-test-images"
        // The newest image of the set says the set is complete and current.
        if FileManager.default.fileExists(atPath: path + "/web-oci.tar") && FileManager.default.fileExists(atPath: path + "/big-oci.tar") { return path }
        let partial = path + ".\(getpid())"
        let r = try! execute("/usr/bin/python3", [RuntimeUnderTest.packageRoot + "/spec-fixtures/build-test-images.py", Fixtures.rootfs, partial])
        precondition(r.code == 0, "test images: \(r.stderr)")
        if rename(partial, path) != 0 {
            // An older set from a previous build of this suite: replace it.
            try? FileManager.default.removeItem(atPath: path)
            rename(partial, path)
        }
        return path
    }()
}

/// A private scontainerd for one test: root and state in a temp dir, containers under a cgroup
/// parent of the test's own, driven through `sctr` and raw RPC lines. `stop()` removes every
/// container, stops the daemon and checks that nothing stayed behind.
final class DaemonInstance: @unchecked Sendable {
    let name: String
    let dir: String
    private(set) var pid: pid_t = 0
    var socketPath: String { dir + "/state/scontainerd.sock" }
    static let binDir = (ShimBinary.path as NSString).deletingLastPathComponent

    let extraFlags: [String]

    init(_ extraFlags: [String] = []) throws {
        self.extraFlags = extraFlags
        // Short: shim sockets live under it and must fit in sun_path.
        name = "sd-\(UUID().uuidString.prefix(8).lowercased())"
        dir = NSTemporaryDirectory() + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try start()
    }

    func start() throws {
        pid = try spawn(DaemonInstance.binDir + "/scontainerd", ["--root", dir + "/root", "--state", dir + "/state"] + extraFlags,
                        stdout: dir + "/daemon.log", stderr: dir + "/daemon.log")
        try eventually("scontainerd answers: \(log)") { try version() }
    }

    private func version() throws -> Bool { try sctr(["version"]).code == 0 }

    var log: String { (try? String(contentsOfFile: dir + "/daemon.log", encoding: .utf8)) ?? "" }

    /// `sctr ARGS` against this daemon.
    @discardableResult
    func sctr(_ args: [String], env: [String: String] = [:], seconds: Int = 60) throws -> Outcome {
        try executeClient(DaemonInstance.binDir + "/sctr", args, env: env.merging(["SCONTAINERD_SOCKET": socketPath]) { $1 }, seconds: seconds)
    }

    /// `sctr run` with the test's cgroup parent.
    func run(_ flags: [String], _ image: String, _ cmd: [String] = []) throws -> Outcome {
        try sctr(["run", "--cgroup-parent", "/" + name] + flags + [image] + cmd)
    }

    func importImage(_ file: String) throws -> Outcome { try sctr(["import", TestImages.dir + "/" + file]) }

    /// `sctr inspect` as JSON (the one object of its array).
    func inspect(_ ref: String) throws -> [String: Any] {
        let r = try sctr(["inspect", ref])
        return ((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [[String: Any]])?.first ?? [:]
    }

    /// `sctr ps -a --format json`: one object per line.
    func containers(_ extra: [String] = []) throws -> [[String: Any]] {
        try sctr(["ps", "-a", "--format", "json"] + extra).stdout.split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// Kills the daemon outright (no cleanup of its own), as a crash would.
    func crash() {
        kill(pid, SIGKILL)
        waitForExit(pid)
        pid = 0
    }

    /// SIGTERM, as an operator stops it; its containers keep running.
    func terminate() {
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        waitForExit(pid)
        pid = 0
    }

    func stop() {
        if pid > 0 {
            for ns in (try? sctr(["namespace", "ls"]).stdout.split(separator: "\n").map(String.init)) ?? [] {
                let ids = (try? sctr(["--namespace", ns, "ps", "-aq", "--no-trunc"]).stdout.split(separator: "\n").map(String.init)) ?? []
                if !ids.isEmpty { _ = try? sctr(["--namespace", ns, "rm", "-f"] + ids) }
            }
            kill(pid, SIGTERM)
            waitForExit(pid)
            pid = 0
        }
        // The daemon leaves its bridges and its DNS server up when it stops, as docker does.
        if FileManager.default.fileExists(atPath: dir + "/root/metadata.db") {
            let down = try? execute(DaemonInstance.binDir + "/scontainerd", ["networks-down", dir + "/root", dir + "/state"])
            if down?.code != 0 { print("networks-down: \(down?.stdout ?? "") \(down?.stderr ?? "")") }
        }
        HostCleanup.sweep(dir: dir, cgroup: name, client: "scontainerd")
    }
}
