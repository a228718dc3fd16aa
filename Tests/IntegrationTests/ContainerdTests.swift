import Foundation
import Testing

/// Quotes a word for /bin/sh.
func shellQuoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }

/// Runs a command line under `script`, which gives it a terminal of its own: what `ctr run -t`
/// needs on its side. The terminal's carriage returns are dropped.
func underTerminal(_ argv: [String]) throws -> Outcome {
    let r = try executeClient("/usr/bin/script", ["-qec", argv.map(shellQuoted).joined(separator: " "), "/dev/null"])
    return Outcome(stdout: String(String.UnicodeScalarView(r.stdout.unicodeScalars.filter { $0 != "\r" })), stderr: r.stderr, code: r.code)
}

/// containerd 1.6 (Debian) with its runc shim (io.containerd.runc.v2) driving srunc through
/// `--runc-binary`, and runc the same way: every scenario must come out the same.
@Suite("containerd drives the runtime")
struct ContainerdTests {
    @Test(arguments: RuntimeUnderTest.all)
    func runPrintsOutputEnvAndExitCode(_ runtime: RuntimeUnderTest) throws {
        let ctd = try ContainerdInstance(runtime)
        defer { ctd.stop() }
        let r = try ctd.run("out", ["--rm", "--env", "GREETING=from env"],
                            ["sh", "-c", "echo to stdout; echo to stderr >&2; echo $GREETING; pwd; exit 3"])
        #expect(r.stdout == "to stdout\nfrom env\n/\n")
        #expect(r.stderr.contains("to stderr"))
        #expect(r.code == 3)
        #expect(try ctd.ctr(["containers", "ls", "-q"]).stdout.isEmpty, "--rm leaves no container")
    }

    @Test(arguments: RuntimeUnderTest.all)
    func createFailuresReachCtrFromTheLog(_ runtime: RuntimeUnderTest) throws {
        let ctd = try ContainerdInstance(runtime)
        defer { ctd.stop() }
        // The shim reads the runtime's last error line from its --log JSON file.
        let missing = try ctd.run("missing", ["--rm"], ["no-such-program"])
        #expect(missing.code != 0)
        #expect(missing.stderr.contains("OCI runtime create failed"))
        #expect(missing.stderr.contains("exec: \"no-such-program\": executable file not found in $PATH"), "\(missing.stderr)")
        let badCwd = try ctd.run("badcwd", ["--rm", "--cwd", "/etc/passwd"], ["true"])
        #expect(badCwd.code != 0)
        #expect(badCwd.stderr.lowercased().contains("not a directory"), "\(badCwd.stderr)")
        #expect(try ctd.ctr(["task", "ls", "-q"]).stdout.isEmpty)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: ctd.dir + "/runc/default")) ?? [] == [],
                "no runtime state left")
    }

    @Test(arguments: RuntimeUnderTest.all)
    func terminalSession(_ runtime: RuntimeUnderTest) throws {
        let ctd = try ContainerdInstance(runtime)
        defer { ctd.stop() }
        let r = try underTerminal(["/usr/bin/ctr", "--address", ctd.address, "run", "--rm", "-t"] + ctd.runFlags("tty")
                                  + [ImageFixture.reference, "tty", "sh", "-c", "tty; test -t 0 && echo stdin is a tty; exit 5"])
        #expect(r.stdout.contains("/dev/pts/0\nstdin is a tty\n"), "\(r.stdout) \(r.stderr)")
        #expect(r.code == 5)
    }

    @Test(arguments: RuntimeUnderTest.all)
    func detachedTaskExecPsPauseKillDelete(_ runtime: RuntimeUnderTest) throws {
        let ctd = try ContainerdInstance(runtime)
        defer { ctd.stop() }
        let id = "detached"
        #expect(try ctd.run(id, ["-d"], ["sleep", "1000"]).code == 0)
        let exec = try ctd.ctr(["task", "exec", "--fifo-dir", ctd.dir + "/fifo", "--exec-id", "e1", id,
                                "sh", "-c", "echo exec ran in $(hostname); exit 4"])
        #expect(exec.code == 4)
        #expect(exec.stdout.hasPrefix("exec ran in "))
        let ttyExec = try underTerminal(["/usr/bin/ctr", "--address", ctd.address, "task", "exec", "-t", "--fifo-dir",
                                         ctd.dir + "/fifo", "--exec-id", "e2", id, "tty"])
        #expect(ttyExec.stdout.contains("/dev/pts/"), "\(ttyExec.stdout) \(ttyExec.stderr)")

        let listing = try ctd.ctr(["task", "ls"]).stdout
        let initPid = listing.split(separator: "\n").first { $0.hasPrefix(id) }?.split(separator: " ", omittingEmptySubsequences: true)[1]
        #expect(listing.contains("RUNNING"))
        let ps = try ctd.ctr(["task", "ps", id]).stdout
        #expect(initPid != nil && ps.split(separator: "\n").contains { $0.hasPrefix(initPid! + " ") }, "\(ps)")

        #expect(try ctd.ctr(["task", "pause", id]).code == 0)
        #expect(try ctd.ctr(["task", "ls"]).stdout.contains("PAUSED"))
        let freezer = "/sys/fs/cgroup/freezer/\(ctd.cgroup(id))/freezer.state"
        #expect(try String(contentsOfFile: freezer, encoding: .utf8) == "FROZEN\n")
        #expect(try ctd.ctr(["task", "resume", id]).code == 0)
        #expect(try ctd.ctr(["task", "ls"]).stdout.contains("RUNNING"))

        #expect(try ctd.ctr(["task", "kill", "--all", "--signal", "SIGKILL", id]).code == 0)
        try eventually("ctr reports the task STOPPED") { try ctd.ctr(["task", "ls"]).stdout.contains("STOPPED") }
        let deleted = try ctd.ctr(["task", "delete", id])
        #expect(deleted.code == 0)
        #expect(deleted.stderr.contains("exit code 137"), "\(deleted.stderr)")
        #expect(try ctd.ctr(["containers", "delete", id]).code == 0)
        #expect(!FileManager.default.fileExists(atPath: "\(ctd.dir)/runc/default/\(id)"), "runtime state removed")
        #expect(HostCleanup.cgroupDirectories(ctd.cgroup(id)).isEmpty, "container cgroups removed")
    }

    @Test(arguments: RuntimeUnderTest.all)
    func memoryLimitIsSetAndEnforced(_ runtime: RuntimeUnderTest) throws {
        let ctd = try ContainerdInstance(runtime)
        defer { ctd.stop() }
        let id = "limited"
        #expect(try ctd.run(id, ["-d", "--memory-limit", "33554432"], ["sleep", "1000"]).code == 0)
        let limit = "/sys/fs/cgroup/memory/\(ctd.cgroup(id))/memory.limit_in_bytes"
        #expect(try String(contentsOfFile: limit, encoding: .utf8) == "33554432\n")
        // dd's 64 MiB buffer cannot fit: the kernel's OOM killer ends it inside the container.
        let hog = try ctd.ctr(["task", "exec", "--fifo-dir", ctd.dir + "/fifo", "--exec-id", "hog", id,
                               "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"])
        #expect(hog.code == 137, "\(hog.stderr)")
        #expect(try ctd.ctr(["task", "ls"]).stdout.contains("RUNNING"), "the init survives its exec's OOM kill")
    }
}
