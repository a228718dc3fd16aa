import Foundation
import Testing

/// The rest of a container's lifecycle as docker users drive it (issue 14): signals to an
/// attached run, detaching, starting again, restarting, renaming, waiting.
@Suite("container lifecycle")
struct LifecycleTests {
    static let image = "test/layered:oci"

    /// `sctr run` in the background of the test, its output in a file.
    static func spawnRun(_ d: DaemonInstance, _ args: [String], output: String) throws -> pid_t {
        try spawn(DaemonInstance.binDir + "/sctr", ["run", "--cgroup-parent", "/" + d.name] + args, env: ["SCONTAINERD_SOCKET": d.socketPath],
                         stdout: output, stderr: output + ".err")
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    @Test("SIGINT to an attached run --rm reaches the container, which is then removed")
    func signalProxy() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let out = d.dir + "/run.out"
        let script = "trap 'echo got INT; exit 130' INT; echo ready; while :; do sleep 0.1; done"
        let pid = try Self.spawnRun(d, ["--rm", "--name", "proxied", Self.image, "sh", "-c", script], output: out)
        try eventually("the container is ready") { Self.read(out).contains("ready") }
        kill(pid, SIGINT)
        #expect(try exitCode(of: pid) == 130)
        #expect(Self.read(out) == "ready\ngot INT\n", "\(Self.read(out)) \(Self.read(out + ".err"))")
        try eventually("the container is removed") { try d.containers().isEmpty }
    }

    @Test("a second SIGTERM kills a container that ignores the first; --rm still removes it")
    func secondSignalKills() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let out = d.dir + "/run.out"
        let pid = try Self.spawnRun(d, ["--rm", Self.image, "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"], output: out)
        try eventually("the container is ready") { Self.read(out).contains("ready") }
        kill(pid, SIGTERM)
        // The first TERM is ignored in there; the container must still be running.
        #expect(try d.containers().first?["status"] as? String == "running")
        kill(pid, SIGTERM)
        #expect(try exitCode(of: pid) == 137)
        try eventually("the container is removed") { try d.containers().isEmpty }
    }

    @Test("ctrl-p ctrl-q detaches from a terminal run; the container goes on")
    func detachKeys() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let fifo = d.dir + "/keys", out = d.dir + "/tty.out"
        #expect(mkfifo(fifo, 0o600) == 0)
        let keys = open(fifo, O_RDWR | O_CLOEXEC)  // read-write: opening never blocks, EOF never comes
        defer { close(keys) }
        let command = [DaemonInstance.binDir + "/sctr", "run", "-it", "--name", "kept", "--cgroup-parent", "/" + d.name, Self.image,
                       "sh", "-c", "echo ready; exec sleep 1000"].map(shellQuoted).joined(separator: " ")
        let pid = try spawn("/bin/sh", ["-c", "exec /usr/bin/script -qefc \(shellQuoted(command)) /dev/null < \(fifo)"],
                            env: ["SCONTAINERD_SOCKET": d.socketPath], stdout: out, stderr: out)
        try eventually("the container is ready") { Self.read(out).contains("ready") }
        let ctrlPCtrlQ: [UInt8] = [0x10, 0x11]
        #expect(write(keys, ctrlPCtrlQ, 2) == 2)
        #expect(try exitCode(of: pid) == 0, "\(Self.read(out))")
        #expect(try d.inspect("kept")["status"] as? String == "running")
    }

    @Test("stop, then start: the same container runs again with its filesystem changes; restart too")
    func startAgain() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let script = "echo run >> /runs; cat /runs | wc -l; trap 'exit 0' TERM; sleep 1000 & wait"
        #expect(try d.run(["-d", "--name", "again"], Self.image, ["sh", "-c", script]).code == 0)
        try eventually("the first run wrote its line") { try d.sctr(["logs", "again"]).stdout == "1\n" }
        #expect(try d.sctr(["stop", "again"]).code == 0)
        #expect(try d.inspect("again")["status"] as? String == "exited")
        #expect(try d.sctr(["start", "again"]).code == 0)
        try eventually("the second run saw the first one's file") { try d.sctr(["logs", "again"]).stdout == "1\n2\n" }
        #expect(try d.inspect("again")["status"] as? String == "running")
        #expect(try d.sctr(["restart", "-t", "5", "again"]).code == 0)
        try eventually("the third run") { try d.sctr(["logs", "again"]).stdout == "1\n2\n3\n" }
        let attached = try d.sctr(["create", "--cgroup-parent", "/" + d.name, Self.image, "sh", "-c", "echo attached; exit 5"])
        let id = attached.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let started = try d.sctr(["start", "-a", id])
        #expect(started.code == 5 && started.stdout == "attached\n", "\(started)")
    }

    @Test("a restart policy shows restarting between runs; logs -f follows all of them")
    func restartingAndFollow() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        #expect(try d.run(["-d", "--name", "flaky", "--restart", "on-failure:3"], Self.image, ["sh", "-c", "echo run; sleep 0.2; exit 1"]).code == 0)
        let out = d.dir + "/follow.out"
        let follower = try spawn(DaemonInstance.binDir + "/sctr", ["logs", "-f", "flaky"], env: ["SCONTAINERD_SOCKET": d.socketPath], stdout: out, stderr: out)
        var seen = Set<String>()
        try eventually("the policy gives up after three restarts") {
            if let s = try d.inspect("flaky")["status"] as? String { seen.insert(s) }
            return try d.inspect("flaky")["restartCount"] as? Int == 3 && d.inspect("flaky")["status"] as? String == "exited"
        }
        #expect(seen.contains("restarting"), "statuses seen: \(seen)")
        #expect(try exitCode(of: follower) == 0)
        #expect(Self.read(out) == "run\nrun\nrun\nrun\n", "\(Self.read(out))")
    }

    @Test("rename, update of live limits, top, and stats that match the cgroup's files")
    func renameUpdateTopStats() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        #expect(try d.run(["-d", "--name", "before", "--memory", "64m", "--restart", "unless-stopped"], Self.image, ["sleep", "1000"]).code == 0)
        #expect(try d.sctr(["rename", "before", "after"]).code == 0)
        let id = try d.inspect("after")["id"] as? String ?? ""
        let old = try d.inspect("before")
        #expect(!id.isEmpty && old.isEmpty)
        let memory = "/sys/fs/cgroup/memory/\(d.name)/\(id)"
        #expect((try? String(contentsOfFile: memory + "/memory.limit_in_bytes", encoding: .utf8)) == "\(64 << 20)\n")
        #expect(try d.sctr(["update", "--memory", "96m", "--pids-limit", "50", "after"]).code == 0)
        #expect((try? String(contentsOfFile: memory + "/memory.limit_in_bytes", encoding: .utf8)) == "\(96 << 20)\n")
        #expect((try? String(contentsOfFile: "/sys/fs/cgroup/pids/\(d.name)/\(id)/pids.max", encoding: .utf8)) == "50\n")
        #expect((try d.inspect("after")["config"] as? [String: Any])?["memory"] as? Int == 96 << 20)

        let top = try d.sctr(["top", "after"])
        #expect(top.code == 0 && top.stdout.hasPrefix("UID") && top.stdout.contains("sleep 1000"), "\(top)")

        let stats = try d.sctr(["stats", "--no-stream", "--format", "json", "after"])
        let sample = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(sample["memoryLimit"] as? Int == 96 << 20, "\(stats)")
        #expect(sample["pids"] as? Int == 1)
        let pidsFile = (try? String(contentsOfFile: "/sys/fs/cgroup/pids/\(d.name)/\(id)/pids.current", encoding: .utf8)) ?? ""
        #expect(pidsFile == "1\n")
        let usage = sample["memoryUsage"] as? Int ?? 0
        #expect(usage > 0 && usage < 96 << 20)
        let table = try d.sctr(["stats", "--no-stream", "after"])
        #expect(table.code == 0 && table.stdout.contains("96MiB") && table.stdout.contains("after"), "\(table)")
    }

    /// A tree as `find` lists it (path, type, mode, link target) and its files' digests.
    static func listing(_ dir: String) throws -> String {
        try execute("/bin/sh", ["-c", "cd \(shellQuoted(dir)) && find . -printf '%p %y %m %l\\n' | sort && find . -type f -exec sha256sum {} + | sort"]).stdout
    }

    @Test("cp round-trips a tree with its links byte for byte; a link in the container never reaches the host")
    func copyBothWays() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        #expect(try d.run(["-d", "--name", "box"], Self.image, ["sh", "-c", "ln -s ../../../../../etc /escape; sleep 1000"]).code == 0)
        let tree = d.dir + "/tree"
        try FileManager.default.createDirectory(atPath: tree + "/sub/empty", withIntermediateDirectories: true)
        try Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: URL(fileURLWithPath: tree + "/data.bin"))
        try "#!/bin/sh\necho hi\n".write(toFile: tree + "/sub/run.sh", atomically: true, encoding: .utf8)
        chmod(tree + "/sub/run.sh", 0o755)
        chmod(tree + "/data.bin", 0o640)
        try FileManager.default.createSymbolicLink(atPath: tree + "/rel", withDestinationPath: "sub/run.sh")
        try FileManager.default.createSymbolicLink(atPath: tree + "/abs", withDestinationPath: "/etc/passwd")
        #expect(try d.sctr(["cp", tree, "box:/tmp/"]).code == 0)
        #expect(try d.sctr(["exec", "box", "/tmp/tree/sub/run.sh"]).stdout == "hi\n")
        let back = d.dir + "/back"
        let out = try d.sctr(["cp", "box:/tmp/tree", back])
        #expect(out.code == 0, "\(out)")
        let original = try Self.listing(tree), copiedBack = try Self.listing(back)
        #expect(copiedBack == original && original.contains("./abs l 777 /etc/passwd"), "\(copiedBack)")

        let escaped = try d.sctr(["cp", "box:/escape/passwd", d.dir + "/passwd"])
        #expect(escaped.code == 0, "\(escaped)")
        let copied = (try? String(contentsOfFile: d.dir + "/passwd", encoding: .utf8)) ?? ""
        let containers = try d.sctr(["exec", "box", "cat", "/etc/passwd"]).stdout
        let hosts = try String(contentsOfFile: "/etc/passwd", encoding: .utf8)
        #expect(copied == containers && copied != hosts, "the container's passwd, not the host's")
    }

    @Test("a health check turns unhealthy after its retries and healthy on a success, with events")
    func healthcheck() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        #expect(try d.run(["-d", "--name", "checked", "--health-cmd", "test -f /tmp/ready && echo fine", "--health-interval", "100ms",
                           "--health-retries", "2"], Self.image, ["sleep", "1000"]).code == 0)
        func health() throws -> [String: Any] { try d.inspect("checked")["health"] as? [String: Any] ?? [:] }
        try eventually("unhealthy after two failures") { try health()["status"] as? String == "unhealthy" }
        #expect(try health()["failingStreak"] as? Int ?? 0 >= 2)
        #expect(try d.sctr(["exec", "checked", "touch", "/tmp/ready"]).code == 0)
        try eventually("healthy again") { try health()["status"] as? String == "healthy" }
        let log = try health()["log"] as? [[String: Any]] ?? []
        #expect(log.last?["exitCode"] as? Int == 0 && log.last?["output"] as? String == "fine\n", "\(log)")
        let out = d.dir + "/events.out"
        let events = try spawn(DaemonInstance.binDir + "/sctr", ["events", "--since", "0", "--filter", "action=health_status", "--format", "json"],
                               env: ["SCONTAINERD_SOCKET": d.socketPath], stdout: out, stderr: out)
        defer { kill(events, SIGKILL); waitForExit(events) }
        try eventually("both health events") {
            let text = Self.read(out)
            return text.contains("\"healthStatus\":\"unhealthy\"") && text.contains("\"healthStatus\":\"healthy\"")
        }
        #expect(try d.run(["--rm", "--health-interval", "1s"], Self.image, ["true"]).code == 125, "timings without a command are refused")
    }
}
