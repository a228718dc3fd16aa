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
        let config = try String(contentsOfFile: RuntimeUnderTest.packageRoot + "/spec-fixtures/podman-containers.conf", encoding: .utf8)
            .replacingOccurrences(of: "@DIR@", with: dir)
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
        // conmon's own cgroup (<parent>/conmon) is podman's to keep; the parent is ours. The overlay
        // driver may keep its own home (root/overlay) bind-mounted: storage, not a container.
        HostCleanup.sweep(dir: dir, cgroup: name, client: "podman with \(runtime)") { $0 == dir + "/root/overlay" }
    }
}
