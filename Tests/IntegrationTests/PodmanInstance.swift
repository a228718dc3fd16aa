import Foundation
import Testing

/// podman (Debian's, with conmon) for one test, with its storage, run root, locks, events and
/// containers.conf in one temporary directory, containers under a cgroup parent of their own
/// and the runtime under test given by path. `stop()` removes everything it made.
final class PodmanInstance: @unchecked Sendable {
    let name: String
    let dir: String
    let runtime: RuntimeUnderTest

    init(_ runtime: RuntimeUnderTest) throws {
        self.runtime = runtime
        name = uniqueTestName("pm")
        dir = NSTemporaryDirectory() + name
        try FileManager.default.createDirectory(atPath: dir + "/tmp", withIntermediateDirectories: true)
        // Root here lacks CAP_SYS_RESOURCE: podman's default nofile of 1048576 is above the hard
        // limit, so runc and srunc alike would refuse it. Locks are files, not the host's shm.
        let config = """
            [containers]
            log_driver = "k8s-file"
            default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
            [engine]
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            events_logfile_path = "\(dir)/events.log"
            lock_type = "file"
            tmp_dir = "\(dir)/tmp"
            """
        try config.write(toFile: dir + "/containers.conf", atomically: true, encoding: .utf8)
        let loaded = try podman(["load", "-i", ImageFixture.archive])
        guard loaded.code == 0 else { stop(); throw ClientError("podman load: \(loaded.stderr)") }
    }

    /// Runs podman with this instance's storage and runtime, from its directory: conmon writes
    /// an `oom` marker into its working directory when a container is OOM-killed.
    @discardableResult
    func podman(_ args: [String]) throws -> Outcome {
        try executeClient("/usr/bin/podman", ["--root", dir + "/root", "--runroot", dir + "/run", "--storage-driver", "overlay",
                                              "--runtime", runtime.binary] + args,
                          cwd: dir, env: ["CONTAINERS_CONF": dir + "/containers.conf"])
    }

    /// `podman run` of the busybox image without a network, in this test's cgroup parent.
    func run(_ flags: [String], _ args: [String]) throws -> Outcome {
        try podman(["run", "--network", "none", "--cgroup-parent", "/" + name] + flags + [ImageFixture.reference] + args)
    }

    /// `podman inspect --format FORMAT ID`, trimmed.
    func inspect(_ id: String, _ format: String) throws -> String {
        try podman(["inspect", "--format", format, id]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Removes every container, then kills, unmounts and removes what is left, recording an
    /// issue for anything that had to be cleaned by force.
    func stop() {
        _ = try? podman(["rm", "--all", "--force", "--time", "0"])
        let strayProcesses = HostCleanup.lingering(mentioning: dir) + HostCleanup.processes(inCgroup: name)
        HostCleanup.killAll(mentioning: dir)
        // conmon's own cgroup (<parent>/conmon) is podman's to keep; the parent is ours.
        HostCleanup.removeCgroups(name)
        // The overlay driver may keep its own home (root/overlay) bind-mounted: storage, not a container.
        let strayMounts = HostCleanup.mounts(under: dir).filter { $0 != dir + "/root/overlay" }
        HostCleanup.unmountAll(under: dir)
        try? FileManager.default.removeItem(atPath: dir)
        #expect(strayProcesses.isEmpty, "processes left by podman with \(runtime): \(strayProcesses)")
        #expect(strayMounts.isEmpty, "mounts left by podman with \(runtime): \(strayMounts)")
        #expect(HostCleanup.cgroupDirectories(name).isEmpty)
    }
}
