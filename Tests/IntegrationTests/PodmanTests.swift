import Foundation
import Testing

/// podman 4.3 (Debian) with conmon driving srunc through `--runtime`, and runc the same way:
/// every scenario must come out the same.
@Suite("podman drives the runtime")
struct PodmanTests {
    @Test(arguments: RuntimeUnderTest.all)
    func runWithEnvWorkdirUserHostname(_ runtime: RuntimeUnderTest) throws {
        let pm = try PodmanInstance(runtime)
        defer { pm.stop() }
        let r = try pm.run(["--rm", "-e", "GREETING=hello there", "-w", "/tmp", "--user", "1000:1000", "--hostname", "box"],
                           ["sh", "-c", "echo $GREETING; pwd; id; hostname; echo oops >&2; exit 3"])
        #expect(r.stdout == "hello there\n/tmp\nuid=1000(user) gid=1000(user) groups=1000(user)\nbox\n")
        #expect(r.stderr.contains("oops"))
        #expect(r.code == 3)
        #expect(try pm.podman(["ps", "--all", "--quiet"]).stdout.isEmpty, "--rm removed the container")
    }

    @Test(arguments: RuntimeUnderTest.all)
    func readOnlyRootAndBindMount(_ runtime: RuntimeUnderTest) throws {
        let pm = try PodmanInstance(runtime)
        defer { pm.stop() }
        let shared = pm.dir + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        try "from host\n".write(toFile: shared + "/in", atomically: true, encoding: .utf8)
        let r = try pm.run(["--rm", "--read-only", "-v", shared + ":/vol"],
                           ["sh", "-c", "cat /vol/in; echo from container > /vol/out; touch /root-file || echo root is read-only"])
        #expect(r.stdout == "from host\nroot is read-only\n")
        #expect(r.code == 0)
        #expect(try String(contentsOfFile: shared + "/out", encoding: .utf8) == "from container\n")
    }

    @Test(arguments: RuntimeUnderTest.all)
    func memoryAndPidsLimits(_ runtime: RuntimeUnderTest) throws {
        let pm = try PodmanInstance(runtime)
        defer { pm.stop() }
        let r = try pm.run(["--rm", "-m", "32m", "--pids-limit", "20"],
                           ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max"])
        #expect(r.stdout == "33554432\n20\n", "\(r.stderr)")
        // More than 32 MiB at once: the OOM killer ends the container, reported as 137.
        let hog = try pm.run(["--rm", "-m", "32m"], ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"])
        #expect(hog.code == 137, "\(hog.stderr)")
    }

    @Test(arguments: RuntimeUnderTest.all)
    func capabilitiesAndNoNewPrivileges(_ runtime: RuntimeUnderTest) throws {
        let pm = try PodmanInstance(runtime)
        defer { pm.stop() }
        let r = try pm.run(["--rm", "--cap-drop", "CHOWN", "--cap-add", "SYS_ADMIN", "--security-opt", "no-new-privileges"],
                           ["cat", "/proc/self/status"])
        let fields = Dictionary(r.stdout.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: ":", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), parts[1].trimmingCharacters(in: .whitespaces)) : nil
        }, uniquingKeysWith: { a, _ in a })
        let effective = UInt64(fields["CapEff"] ?? "", radix: 16) ?? 0
        #expect(effective & (1 << 0) == 0, "CAP_CHOWN dropped")
        #expect(effective & (1 << 21) != 0, "CAP_SYS_ADMIN added")
        #expect(effective & (1 << 1) != 0, "default CAP_DAC_OVERRIDE kept")
        #expect(fields["CapBnd"] == fields["CapEff"])
        #expect(fields["NoNewPrivs"] == "1")
    }

    @Test(arguments: RuntimeUnderTest.all)
    func terminal(_ runtime: RuntimeUnderTest) throws {
        let pm = try PodmanInstance(runtime)
        defer { pm.stop() }
        let r = try pm.run(["--rm", "-t"], ["sh", "-c", "tty; stty size; exit 5"])
        #expect(r.stdout.hasPrefix("/dev/pts/0\r\n"), "\(r.stdout) \(r.stderr)")
        #expect(r.code == 5)
    }

    @Test(arguments: RuntimeUnderTest.all)
    func detachedExecLogsTopPauseStop(_ runtime: RuntimeUnderTest) throws {
        let pm = try PodmanInstance(runtime)
        defer { pm.stop() }
        let started = try pm.run(["-d"], ["sh", "-c", "echo started; trap 'echo got TERM; exit 7' TERM; while :; do sleep 0.1; done"])
        #expect(started.code == 0, "\(started.stderr)")
        let id = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let exec = try pm.podman(["exec", id, "sh", "-c", "echo in exec; exit 4"])
        #expect(exec.stdout == "in exec\n")
        #expect(exec.code == 4)
        #expect(try pm.podman(["exec", "-t", id, "tty"]).stdout.hasPrefix("/dev/pts/"))
        let top = try pm.podman(["top", id, "pid", "args"]).stdout
        #expect(top.split(separator: "\n").contains { $0.hasPrefix("1 ") && $0.contains("trap") }, "\(top)")

        #expect(try pm.podman(["pause", id]).code == 0)
        #expect(try pm.inspect(id, "{{.State.Status}}") == "paused")
        #expect(try pm.podman(["unpause", id]).code == 0)
        #expect(try pm.inspect(id, "{{.State.Status}}") == "running")

        #expect(try pm.podman(["stop", "--time", "10", id]).code == 0)
        #expect(try pm.inspect(id, "{{.State.Status}} {{.State.ExitCode}}") == "exited 7", "SIGTERM reached the trap")
        #expect(try pm.podman(["logs", id]).stdout == "started\ngot TERM\n")
        #expect(try pm.podman(["rm", id]).code == 0)
    }

    @Test(arguments: RuntimeUnderTest.all)
    func failuresMapToPodmansExitCodes(_ runtime: RuntimeUnderTest) throws {
        let pm = try PodmanInstance(runtime)
        defer { pm.stop() }
        // podman turns the runtime's error text into 127 (not found) and 126 (not executable).
        let missing = try pm.run(["--rm"], ["no-such-program"])
        #expect(missing.code == 127)
        #expect(missing.stderr.contains("exec: \"no-such-program\": executable file not found in $PATH"), "\(missing.stderr)")
        let notExecutable = try pm.run(["--rm"], ["/etc/passwd"])
        #expect(notExecutable.code == 126)
        #expect(notExecutable.stderr.contains("permission denied"), "\(notExecutable.stderr)")
        #expect(try pm.podman(["ps", "--all", "--quiet"]).stdout.isEmpty)
    }

    @Test(arguments: RuntimeUnderTest.all)
    func killAndWait(_ runtime: RuntimeUnderTest) throws {
        let pm = try PodmanInstance(runtime)
        defer { pm.stop() }
        let id = try pm.run(["-d"], ["sleep", "1000"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try pm.podman(["kill", id]).code == 0)
        #expect(try pm.podman(["wait", id]).stdout == "137\n")
        #expect(try pm.podman(["rm", id]).code == 0)
        #expect(try pm.podman(["ps", "--all", "--quiet"]).stdout.isEmpty)
    }
}
