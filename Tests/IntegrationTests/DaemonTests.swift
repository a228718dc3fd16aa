import CLinux
import Foundation
import Testing
import API

/// scontainerd and sctr end to end: images in three formats into shared snapshots, containers
/// through sshim and srunc, volumes, terminals, restart policies, a daemon crash, bad input.
@Suite("scontainerd")
struct DaemonTests {
    static let layeredTree = "/data\n/data/b\n/layer2\n/opq\n/opq/z\ntop\n"

    @Test func importsAllThreeFormatsWithWhiteoutsAndOpaqueDirs() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        for (file, name) in [("layered", "test/layered:layout"), ("layered-oci.tar", "test/layered:oci"),
                             ("layered-docker.tar", "test/layered:docker")] {
            let imported = try d.importImage(file)
            #expect(imported.code == 0, "\(file): \(imported.stderr)")
            let r = try d.run(["--rm"], name, ["sh", "-c", "find /data /opq /layer2 | sort; cat /layer2"])
            #expect(r.stdout == DaemonTests.layeredTree, "\(name): \(r.stdout) \(r.stderr)")
            #expect(r.code == 0)
        }
        // All three share the same three layers: one snapshot each.
        let snapshots = try FileManager.default.contentsOfDirectory(atPath: d.dir + "/root/snapshots").filter { !$0.hasPrefix(".") }
        #expect(snapshots.count == 3, "\(snapshots)")
    }

    @Test func copyingRootfsWhereOverlayIsUnavailable() throws {
        let d = try DaemonInstance(["--snapshotter", "copy"])
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let r = try d.run(["--rm"], "test/layered:oci", ["sh", "-c", "find /data /opq /layer2 | sort; cat /layer2; grep -c ' / overlay ' /proc/mounts"])
        #expect(r.stdout == DaemonTests.layeredTree + "0\n", "\(r.stdout) \(r.stderr)")
    }

    @Test func imagesSharingABaseShareItsSnapshots() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("base-oci.tar").code == 0)
        let afterBase = try FileManager.default.contentsOfDirectory(atPath: d.dir + "/root/snapshots").filter { !$0.hasPrefix(".") }
        #expect(afterBase.count == 2)
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let afterBoth = try FileManager.default.contentsOfDirectory(atPath: d.dir + "/root/snapshots").filter { !$0.hasPrefix(".") }
        #expect(afterBoth.count == 3, "layered adds only its top layer")
        #expect(Set(afterBase).isSubset(of: Set(afterBoth)))
        // Removing the base image keeps the layers the other image still uses.
        #expect(try d.sctr(["rmi", "test/base:1"]).code == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.dir + "/root/snapshots").filter { !$0.hasPrefix(".") }.count == 3)
        #expect(try d.run(["--rm"], "test/layered:oci", ["cat", "/data/b"]).stdout == "b\n")
        // An image a container uses cannot go.
        #expect(try d.run(["-d", "--name", "user"], "test/layered:oci", ["sleep", "1000"]).code == 0)
        let refused = try d.sctr(["rmi", "test/layered:oci"])
        #expect(refused.code == 1 && refused.stderr.contains("used by container user"), "\(refused.stderr)")
    }

    @Test func containerLifecycleThroughTheClient() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let started = try d.run(["-d", "--name", "ticker", "-e", "WHO=ticker"], "test/layered:oci",
                                ["sh", "-c", "trap 'echo stopping; exit 0' TERM; echo hello $WHO; while :; do sleep 0.1; done"])
        #expect(started.code == 0, "\(started.stderr)")
        try eventually("the first line is logged") { try d.sctr(["logs", "ticker"]).stdout.contains("hello ticker") }
        #expect(try d.sctr(["logs", "ticker"]).stdout == "hello ticker\n")
        let exec = try d.sctr(["exec", "ticker", "sh", "-c", "echo $WHO in exec; exit 5"])
        #expect(exec.stdout == "ticker in exec\n")
        #expect(exec.code == 5)
        #expect(try d.sctr(["pause", "ticker"]).code == 0)
        #expect(try d.inspect("ticker")["status"] as? String == "paused")
        #expect(try d.sctr(["unpause", "ticker"]).code == 0)
        #expect(try d.inspect("ticker")["status"] as? String == "running")
        #expect(try d.sctr(["stop", "-t", "5", "ticker"]).code == 0)
        let stopped = try d.inspect("ticker")
        #expect(stopped["status"] as? String == "exited")
        #expect(stopped["exitCode"] as? Int == 0, "SIGTERM reached the trap: \(stopped)")
        #expect(try d.sctr(["logs", "ticker"]).stdout == "hello ticker\nstopping\n")
        #expect(try d.sctr(["rm", "ticker"]).code == 0)
        // kill: SIGKILL by default, 137.
        #expect(try d.run(["-d", "--name", "victim"], "test/layered:oci", ["sleep", "1000"]).code == 0)
        #expect(try d.sctr(["kill", "victim"]).code == 0)
        #expect(try d.sctr(["wait", "victim"]).stdout == "137\n")
        #expect(try d.sctr(["rm", "victim"]).code == 0)
        #expect(try d.sctr(["ps", "-a"]).stdout.split(separator: "\n").count == 1, "only the header is left")
        // The foreground run's exit code is the container's; --rm leaves nothing.
        let fg = try d.run(["--rm", "-u", "1000:1000", "-w", "/data", "--hostname", "box", "-m", "48m", "--read-only"], "test/layered:oci",
                           ["sh", "-c", "id -u; pwd; hostname; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; touch /x 2>/dev/null || echo ro; exit 7"])
        #expect(fg.stdout == "1000\n/data\nbox\n50331648\nro\n", "\(fg.stdout) \(fg.stderr)")
        #expect(fg.code == 7)
        #expect(try d.sctr(["ps", "-a"]).stdout.split(separator: "\n").count == 1)
        // logs -f follows until the container exits.
        #expect(try d.run(["-d", "--name", "talker"], "test/layered:oci", ["sh", "-c", "echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three"]).code == 0)
        let followed = try d.sctr(["logs", "-f", "talker"])
        #expect(followed.stdout == "one\nthree\n" && followed.stderr == "two\n", "\(followed)")
    }

    @Test(arguments: RuntimeUnderTest.all)
    func anyOCIRuntimeUnderTheDaemon(_ runtime: RuntimeUnderTest) throws {
        let d = try DaemonInstance(["--runtime", runtime.binary])
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let r = try d.run(["--rm", "-e", "X=1"], "test/layered:oci", ["sh", "-c", "echo $X; cat /layer2; exit 4"])
        #expect(r.stdout == "1\ntop\n" && r.code == 4, "\(r)")
        #expect(try d.run(["-d", "--name", "bg"], "test/layered:oci", ["sleep", "1000"]).code == 0)
        #expect(try d.sctr(["exec", "bg", "cat", "/data/b"]).stdout == "b\n")
        #expect(try d.sctr(["stop", "-t", "1", "bg"]).code == 0)
        #expect(try d.inspect("bg")["exitCode"] as? Int == 137)
    }

    @Test func namedVolumeDataSurvivesContainerRemoval() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        #expect(try d.run(["--rm", "-v", "keep:/vol"], "test/layered:oci", ["sh", "-c", "echo persisted > /vol/f"]).code == 0)
        #expect(try d.run(["--rm", "-v", "keep:/vol:ro"], "test/layered:oci", ["cat", "/vol/f"]).stdout == "persisted\n")
        let ro = try d.run(["--rm", "-v", "keep:/vol:ro"], "test/layered:oci", ["sh", "-c", "echo x > /vol/g || echo refused"])
        #expect(ro.stdout.hasSuffix("refused\n"))
        #expect(try d.sctr(["volume", "ls"]).stdout.contains("keep"))
        #expect(try d.sctr(["volume", "rm", "keep"]).code == 0)
        #expect(!(try d.sctr(["volume", "ls"]).stdout.contains("keep")))
    }

    @Test func interactiveTerminalRun() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let command = [DaemonInstance.binDir + "/sctr", "run", "-it", "--rm", "--cgroup-parent", "/" + d.name, "test/layered:oci",
                       "sh", "-c", "tty; stty size; exit 3"].map(shellQuoted).joined(separator: " ")
        let r = try executeClient("/usr/bin/script", ["-qec", "stty rows 24 cols 80; " + command, "/dev/null"], env: ["SCONTAINERD_SOCKET": d.socketPath])
        #expect(r.stdout.contains("/dev/pts/0"), "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("24 80"), "the client's terminal size reached the container")
        #expect(r.code == 3)
    }

    @Test func restartPolicyRestartsAFailingContainerNTimes() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        #expect(try d.run(["-d", "--name", "flaky", "--restart", "on-failure:2"], "test/layered:oci", ["sh", "-c", "echo run; exit 1"]).code == 0)
        // Three `die` events: the policy has decided after each, so the third run was the last.
        let events = try RPCClient(path: d.socketPath)
        _ = try events.final(events.send(Calls.EventsSubscribe.self, SubscribeParams(since: .sequence(0), filters: ["action": ["die"], "name": ["flaky"]])))
        for _ in 0..<3 { while try events.next()?.notice(API.Event.self) == nil {} }
        let info = try d.inspect("flaky")
        #expect(info["restartCount"] as? Int == 2, "\(info)")
        #expect(info["status"] as? String == "exited")
        #expect(info["exitCode"] as? Int == 1)
        #expect(try d.sctr(["logs", "flaky"]).stdout == "run\nrun\nrun\n", "three runs, one log")
    }

    @Test func daemonCrashKeepsContainersAndExitCodes() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        #expect(try d.run(["-d", "--name", "survivor"], "test/layered:oci", ["sleep", "1000"]).code == 0)
        #expect(try d.run(["-d", "--name", "quitter"], "test/layered:oci", ["sh", "-c", "sleep 0.5; exit 9"]).code == 0)
        let pid = try d.inspect("survivor")["pid"] as? Int ?? 0
        let quitterPid = try d.inspect("quitter")["pid"] as? Int ?? 0
        d.crash()
        try eventually("quitter exits while the daemon is down") { kill(pid_t(quitterPid), 0) != 0 }
        #expect(kill(pid_t(pid), 0) == 0, "the container outlived its daemon")
        try d.start()
        #expect(try d.inspect("survivor")["status"] as? String == "running")
        try eventually("quitter's exit is recorded") { try d.inspect("quitter")["status"] as? String == "exited" }
        let quitter = try d.inspect("quitter")
        #expect(quitter["exitCode"] as? Int == 9, "the exit that happened while the daemon was down: \(quitter)")
        #expect(try d.sctr(["exec", "survivor", "true"]).code == 0)
        #expect(try d.sctr(["stop", "-t", "1", "survivor"]).code == 0)
        #expect(try d.inspect("survivor")["exitCode"] as? Int == 137)
    }

    @Test func eventsReachSubscribersAndSlowClientsBlockNobody() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        // A client that sent half a line, and a subscriber that never reads.
        let stalled = try ShimClient(path: d.socketPath)
        stalled.sendLine("{\"id\":1,\"method\":")
        let deaf = try ShimClient(path: d.socketPath)
        deaf.sendLine(#"{"id":1,"method":"events.subscribe"}"#)
        let listener = try ShimClient(path: d.socketPath)
        #expect(try listener.call("events.subscribe")["seq"] as? Int != nil)
        #expect(try d.importImage("layered-oci.tar").code == 0)
        #expect(try d.run(["--rm"], "test/layered:oci", ["true"]).code == 0)
        // Far more events than the deaf subscriber's socket buffer holds: publishing must not block.
        let tagger = try ShimClient(path: d.socketPath)
        for i in 0..<1500 {
            tagger.sendLine(#"{"id":\#(i),"method":"image.tag","params":{"source":"test/layered:oci","target":"test/tag:\#(i)"}}"#)
            guard try tagger.readMessage(seconds: 10)["result"] != nil else { Issue.record("tag \(i) failed"); break }
        }
        var actions: [String] = []
        while actions.count < 5 {
            let event = try listener.readMessage()["event"] as? [String: Any]
            actions.append("\(event?["type"] ?? "")/\(event?["action"] ?? "")")
        }
        #expect(actions == ["image/import", "container/create", "container/start", "container/die", "container/destroy"])
        #expect(try d.sctr(["version"]).code == 0)
        _ = stalled
        _ = deaf
    }

    @Test func badInputIsRefusedAndTheDaemonKeepsServing() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        let marker = "/tmp/srunc-hostile-escape"
        try? FileManager.default.removeItem(atPath: marker)
        for (file, message) in [("corrupt.tar", "checksum"), ("mismatch.tar", "digest mismatch"), ("arm64.tar", "linux/amd64"),
                                ("hostile-dotdot.tar", "escapes"), ("hostile-symlink.tar", "outside"), ("hostile-hardlink.tar", "not in the layer"),
                                ("no-such-file.tar", "no such file")] {
            let r = try d.importImage(file)
            #expect(r.code == 1, "\(file)")
            #expect(r.stderr.contains(message), "\(file): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: marker), "nothing written outside the store")
        #expect(!FileManager.default.fileExists(atPath: d.dir + "/root/snapshots/shadow"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.dir + "/root/snapshots").filter { !$0.hasPrefix(".") }.isEmpty,
                "no snapshot from a refused layer")
        #expect(try d.sctr(["images"]).stdout.split(separator: "\n").count == 1)
        // Raw lines: malformed JSON, no method, unknown method, unknown container, bad params.
        let client = try ShimClient(path: d.socketPath)
        for (line, code) in [("{oops", "invalid-json"), ("{\"id\":1}", "invalid-request"), ("{\"id\":2,\"method\":\"nope.nothing\"}", "unknown-method"),
                             ("{\"id\":3,\"method\":\"container.inspect\",\"params\":{\"id\":\"ghost\"}}", "not-found"),
                             ("{\"id\":4,\"method\":\"container.create\",\"params\":{\"image\":5}}", "invalid-params"),
                             ("{\"id\":5,\"method\":\"container.create\",\"params\":{\"image\":\"ghost\"}}", "not-found")] {
            client.sendLine(line)
            let reply = try client.readMessage()
            #expect((reply["error"] as? [String: Any])?["code"] as? String == code, "\(line) -> \(reply)")
        }
        #expect(try d.sctr(["logs", "ghost"]).stderr.contains("no such container"))
        #expect(try d.sctr(["version"]).code == 0, "still serving")
    }
}
