import Foundation
import OCI
import Testing

/// The rest of the command line: logs, spec, flags that change how a container is built, and
/// signals reaching a foreground container.
@Suite("commands") struct CommandTests {
    @Test("--log-format json writes error lines go-runc can parse")
    func jsonLog() throws {
        let b = try TestBundle(.srunc)
        defer { b.cleanup() }
        let log = b.dir + "/log.json"
        let r = try b.runtimeCommand(["--log", log, "--log-format", "json", "state", "nope"])
        #expect(r.code == 1)
        #expect(r.stderr.contains("does not exist"))
        let line = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").last.map(String.init) ?? ""
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
        #expect(obj?["level"] == "error")
        #expect(obj?["msg"]?.contains("does not exist") == true)
        #expect(obj?["time"]?.hasSuffix("Z") == true)
    }

    @Test("spec writes a valid default config, once", arguments: RuntimeUnderTest.all)
    func spec(_ rt: RuntimeUnderTest) throws {
        let dir = NSTemporaryDirectory() + "srunc-spec-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try execute(rt.binary, ["spec", "--bundle", dir]).code == 0)
        let spec = try JSONDecoder().decode(Spec.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json")))
        #expect(spec.process?.args == ["sh"])
        #expect(spec.process?.terminal == true)
        #expect(spec.root?.path == "rootfs")
        #expect(spec.linux?.namespaces?.map(\.type) == ["pid", "network", "ipc", "uts", "mount"])
        let again = try execute(rt.binary, ["spec", "--bundle", dir])
        #expect(again.code != 0)
        #expect(again.stderr.contains("exists"))
    }

    @Test("the default spec runs (with a plain process and its cgroup mount)", arguments: RuntimeUnderTest.all)
    func defaultSpecRuns(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt)
        defer { b.cleanup() }
        try FileManager.default.removeItem(atPath: b.dir + "/config.json")
        #expect(try execute(rt.binary, ["spec", "--bundle", b.dir]).code == 0)
        b.spec = try JSONDecoder().decode(Spec.self, from: Data(contentsOf: URL(fileURLWithPath: b.dir + "/config.json")))
        b.spec.process!.terminal = false
        b.spec.process!.args = ["sh", "-c", "hostname; ls /sys/fs/cgroup | grep -c memory; grep ' /sys/fs/cgroup ' /proc/self/mountinfo | cut -d' ' -f6"]
        b.spec.linux!.resources = nil
        try b.writeConfig()
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == (rt.name == "runc" ? "runc" : "srunc"))
        #expect(lines.dropFirst().first == "1")
        // The "ro" option covers the tmpfs too in srunc; runc 1.1 leaves that tmpfs writable.
        if rt.name == "srunc" { #expect(lines.last?.hasPrefix("ro") == true) }
    }

    @Test("--no-pivot, sysctl, domainname and oom_score_adj", arguments: RuntimeUnderTest.all)
    func setupKnobs(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            shell("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax /proc/self/oom_score_adj; cat /proc/sys/kernel/domainname; echo; cat /proc/self/status | grep ^NoNewPrivs")(&$0)
            $0.domainname = "example.test"
            $0.linux!.sysctl = ["net.ipv4.ip_forward": "1", "kernel.msgmax": "12345"]
            $0.process!.oomScoreAdj = 123
        }
        defer { b.cleanup() }
        let r = try b.run(["--no-pivot"])
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("1\n12345\n123\n"))
        // runc 1.1 ignores `domainname`; the spec says to set it, and srunc does.
        if rt.name == "srunc" { #expect(r.stdout.contains("\nexample.test\n")) }
    }

    @Test("run --detach, then kill --all reaches every process", arguments: RuntimeUnderTest.all)
    func detachAndKillAll(_ rt: RuntimeUnderTest) async throws {
        let b = try TestBundle(rt, shell("sleep 100 & sleep 100 & wait"))
        defer { b.cleanup() }
        #expect(try b.run(["--detach"]).code == 0)
        #expect(try b.state()?["status"] as? String == "running")
        let pid = try #require(try b.state()?["pid"] as? Int)
        let ns = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/pid")
        func members() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { Int($0) != nil }.filter {
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\($0)/ns/pid")) == ns
                    && !((try? String(contentsOfFile: "/proc/\($0)/stat", encoding: .utf8))?.contains(") Z ") ?? true)
            }
        }
        try eventually("three processes in the pid namespace") { members().count == 3 }
        #expect(try b.runtimeCommand(["kill", "--all", b.id, "KILL"]).code == 0)
        try eventually("every process in the pid namespace is gone") { members().isEmpty }
        #expect(try b.runtimeCommand(["delete", b.id]).code == 0)
    }

    @Test("signals sent to a foreground run reach the container", arguments: RuntimeUnderTest.all)
    func signalForwarding(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("trap 'echo got-usr1; exit 7' USR1; echo ready; while true; do sleep 0.05; done"))
        defer { b.cleanup() }
        // A shell runs the runtime in the background, signals it once the container is running.
        let script = """
            \(rt.binary) --root \(b.stateRoot) run \(b.id) > \(b.dir)/out & rt=$!
            for i in $(seq 200); do grep -q ready \(b.dir)/out 2>/dev/null && break; sleep 0.02; done
            kill -USR1 $rt; wait $rt; echo "code=$?"; cat \(b.dir)/out
            """
        let r = try execute("/bin/sh", ["-c", script], cwd: b.dir)
        #expect(r.stdout == "code=7\nready\ngot-usr1\n", "\(r.stderr)")
    }

    @Test("features lists what srunc implements")
    func features() throws {
        let r = try execute(RuntimeUnderTest.srunc.binary, ["features"])
        #expect(r.code == 0)
        let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(doc?["ociVersionMax"] as? String == "1.2.0")
        #expect((doc?["hooks"] as? [String])?.count == 6)
        let linux = doc?["linux"] as? [String: Any]
        #expect((linux?["capabilities"] as? [String])?.contains("CAP_SYS_ADMIN") == true)
        let seccomp = linux?["seccomp"] as? [String: Any]
        #expect(seccomp?["enabled"] as? Bool == true)
        #expect((seccomp?["actions"] as? [String])?.contains("SCMP_ACT_NOTIFY") == true)
        #expect((seccomp?["operators"] as? [String])?.count == 7)
        // Only what works is listed: no systemd cgroup driver, no AppArmor or SELinux.
        #expect((linux?["cgroup"] as? [String: Bool])?["systemd"] == false)
        #expect((linux?["apparmor"] as? [String: Bool])?["enabled"] == false)
        // And what this host has: both cgroup versions (hybrid), a time namespace, idmapped mounts.
        #expect((linux?["cgroup"] as? [String: Bool])?["v1"] == true && (linux?["cgroup"] as? [String: Bool])?["v2"] == true)
        #expect((linux?["namespaces"] as? [String])?.contains("time") == FileManager.default.fileExists(atPath: "/proc/self/ns/time"))
        #expect((linux?["mountExtensions"] as? [String: [String: Bool]])?["idmap"]?["enabled"] == true)
        #expect((doc?["mountOptions"] as? [String])?.contains("ridmap") == true)
    }

    /// containerd passes a --root whose parents may not exist yet (/run/containerd/runc/default).
    @Test("--root is created with its parents", arguments: RuntimeUnderTest.all)
    func nestedRoot(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("true"))
        defer { b.cleanup(); try? FileManager.default.removeItem(atPath: b.stateRoot + "-nested") }
        let r = try execute(rt.binary, ["--root", b.stateRoot + "-nested/a/b", "run", b.id], cwd: b.dir)
        #expect(r.code == 0, "\(r.stderr)")
    }
}
