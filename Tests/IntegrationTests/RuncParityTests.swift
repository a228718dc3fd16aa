import Foundation
import OCI
import Testing

/// Behaviours runc has that its users can tell (issue 13), each run through srunc and runc,
/// which must agree.
@Suite("runc parity") struct RuncParityTests {
    @Test("a new network namespace has its loopback up", arguments: RuntimeUnderTest.all)
    func loopbackUp(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("cat /sys/class/net/lo/flags"))
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        let flags = Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(2), radix: 16) ?? 0
        #expect(flags & 0x1 != 0, "IFF_UP in \(r.stdout)")
    }

    @Test("a missing executable is reported in runc's words", arguments: RuntimeUnderTest.all)
    func missingExecutableWording(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) { $0.process!.args = ["/no/such/program"] }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code != 0)
        // runc quotes its message as logfmt (\" for "); the words are the same.
        #expect(r.stderr.replacingOccurrences(of: "\\\"", with: "\"").contains("exec: \"/no/such/program\": stat /no/such/program: no such file or directory"), "\(r.stderr)")
    }

    @Test("HOME comes from the container's /etc/passwd when the env has none", arguments: RuntimeUnderTest.all)
    func homeFromPasswd(_ rt: RuntimeUnderTest) throws {
        for (uid, home) in [(UInt32(0), "/root"), (1000, "/home/user"), (4242, "/")] {
            let b = try TestBundle(rt) { shell("echo $HOME")(&$0); $0.process!.user = User(uid: uid, gid: uid) }
            defer { b.cleanup() }
            let r = try b.run()
            #expect(r.stdout == home + "\n", "uid \(uid): \(r.stdout) \(r.stderr)")
        }
        let given = try TestBundle(rt) { shell("echo $HOME")(&$0); $0.process!.env! += ["HOME=/given"] }
        defer { given.cleanup() }
        #expect(try given.run().stdout == "/given\n")
    }

    @Test("signal 0 is a valid signal for kill", arguments: RuntimeUnderTest.all)
    func signalZero(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("sleep 100"))
        defer { b.cleanup() }
        #expect(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        let zero = try b.runtimeCommand(["kill", b.id, "0"])
        #expect(zero.code == 0, "\(zero.stderr)")
        let all = try b.runtimeCommand(["kill", "--all", b.id, "0"])
        #expect(all.code == 0, "\(all.stderr)")
        #expect(try b.state()?["status"] as? String == "running")
    }

    @Test("srunc spec is runc spec but for ociVersion and the hostname")
    func specMatchesRunc() throws {
        func spec(_ binary: String) throws -> [String: Any] {
            let dir = NSTemporaryDirectory() + "srunc-spec-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            #expect(try execute(binary, ["spec", "--bundle", dir]).code == 0)
            var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! [String: Any]
            object["ociVersion"] = nil
            object["hostname"] = nil
            return object
        }
        let ours = try spec(RuntimeUnderTest.srunc.binary), theirs = try spec(RuntimeUnderTest.runc.binary)
        #expect(NSDictionary(dictionary: ours).isEqual(to: theirs), "srunc: \(ours)\nrunc: \(theirs)")
    }

    @Test("prestart hooks see created, createRuntime hooks creating", arguments: RuntimeUnderTest.all)
    func prestartState(_ rt: RuntimeUnderTest) throws {
        let host = NSTemporaryDirectory() + "srunc-prestart-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: host) }
        let b = try TestBundle(rt) {
            shell("true")(&$0)
            var hooks = Hooks()
            hooks.prestart = [Hook(path: "/bin/sh", args: ["sh", "-c", "cat > \(host)/prestart.json"])]
            hooks.createRuntime = [Hook(path: "/bin/sh", args: ["sh", "-c", "cat > \(host)/createRuntime.json"])]
            $0.hooks = hooks
        }
        defer { b.cleanup() }
        #expect(try b.runtimeCommand(["create", b.id]).code == 0)
        func status(_ hook: String) throws -> String? {
            let data = try Data(contentsOf: URL(fileURLWithPath: host + "/\(hook).json"))
            return (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["status"] as? String
        }
        // The runtime spec gives prestart hooks the state of a created container; runc 1.1
        // passes `creating` (a documented difference: srunc follows the spec).
        #expect(try status("prestart") == (rt.name == "srunc" ? "created" : "creating"))
        #expect(try status("createRuntime") == "creating")
    }

    @Test("a namespace path of another type is refused", arguments: RuntimeUnderTest.all)
    func namespaceOfTheWrongType(_ rt: RuntimeUnderTest) throws {
        for type in ["network", "uts", "cgroup"] {
            let b = try TestBundle(rt) {
                shell("true")(&$0)
                $0.linux!.namespaces = ($0.linux!.namespaces ?? []).filter { $0.type != type } + [Namespace(type: type, path: "/proc/self/ns/ipc")]
            }
            defer { b.cleanup() }
            let r = try b.run()
            #expect(r.code != 0, "\(type) given an ipc namespace: \(r.stdout) \(r.stderr)")
        }
    }

    @Test("an AppArmor profile on a host without AppArmor fails the container", arguments: RuntimeUnderTest.all)
    func appArmorWithoutAppArmor(_ rt: RuntimeUnderTest) throws {
        let enabled = (try? String(contentsOfFile: "/sys/module/apparmor/parameters/enabled", encoding: .utf8))?.hasPrefix("Y") == true
        guard !enabled else { return }  // this host has AppArmor: nothing to refuse
        let b = try TestBundle(rt) { shell("echo ran")(&$0); $0.process!.apparmorProfile = "docker-default" }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code != 0 && r.stdout.isEmpty, "\(r)")
        #expect(r.stderr.lowercased().contains("apparmor"), "\(r.stderr)")
    }

    @Test("events takes Go durations for --interval", arguments: RuntimeUnderTest.all)
    func eventsInterval(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("sleep 100"))
        defer { b.cleanup() }
        #expect(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        for interval in ["100ms", "2s", "1m30s"] {
            let r = try b.runtimeCommand(["events", "--stats", "--interval", interval, b.id])
            #expect(r.code == 0 && r.stdout.contains("\"type\":\"stats\""), "\(interval): \(r)")
        }
        #expect(try b.runtimeCommand(["events", "--stats", "--interval", "soon", b.id]).code != 0)
    }

    @Test("events reports an OOM kill in the container", arguments: RuntimeUnderTest.all)
    func oomEvent(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            shell("sleep 1000")(&$0)
            $0.linux!.resources = Resources()
            $0.linux!.resources!.memory = Memory(limit: 32 << 20, swap: 32 << 20)
        }
        defer { b.cleanup() }
        #expect(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        let out = b.dir + "/events.out"
        let events = try spawn(rt.binary, ["--root", b.stateRoot, "events", "--interval", "100ms", b.id], stdout: out, stderr: b.dir + "/events.err")
        defer { kill(events, SIGKILL); waitForExit(events) }
        let text = { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }
        try eventually("the first stats line (the OOM watch is set up by then)") { text().contains("\"type\":\"stats\"") }
        let hog = try b.runtimeCommand(["exec", b.id, "awk", "BEGIN { s = \"x\"; while (1) s = s s }"])
        #expect(hog.code == 137, "\(hog)")
        try eventually("an oom event") { text().contains("{\"type\":\"oom\",\"id\":\"\(b.id)\"}") }
    }

    @Test("a root-only cwd is entered before the user changes", arguments: RuntimeUnderTest.all)
    func rootOnlyCwd(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) { shell("pwd")(&$0); $0.process!.user = User(uid: 1000, gid: 1000); $0.process!.cwd = "/root" }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0 && r.stdout == "/root\n", "\(r)")
    }

    @Test("exec --process without a user runs as root", arguments: RuntimeUnderTest.all)
    func processWithoutUser(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("sleep 100"))
        defer { b.cleanup() }
        #expect(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        let file = b.dir + "/process.json"
        try #"{"args":["sh","-c","id -u; echo $HOME"],"cwd":"/","env":["PATH=/bin:/usr/bin"]}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try b.runtimeCommand(["exec", "--process", file, b.id])
        #expect(r.code == 0 && r.stdout == "0\n/root\n", "\(r)")
    }

    @Test("kill --all reaches what a stopped container left in its cgroup", arguments: RuntimeUnderTest.all)
    func killAllAfterTheInitExited(_ rt: RuntimeUnderTest) throws {
        let cgroup = "/" + uniqueTestName("killall")
        let b = try TestBundle(rt) {
            shell("sleep 1000 & exit 0")(&$0)
            $0.linux!.namespaces = ($0.linux!.namespaces ?? []).filter { $0.type != "pid" }
            $0.linux!.cgroupsPath = cgroup
        }
        defer { b.cleanup(); rmdir("/sys/fs/cgroup/pids" + cgroup) }
        func procs() -> [String] {
            ((try? String(contentsOfFile: "/sys/fs/cgroup/pids\(cgroup)/cgroup.procs", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        #expect(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        try eventually("the init exits and leaves its sleep") { try b.state()?["status"] as? String == "stopped" && procs().count == 1 }
        let ps = try b.runtimeCommand(["ps", "--format", "json", b.id])
        #expect(ps.code == 0 && ps.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\(procs()[0])]", "ps of a stopped container lists its leftovers: \(ps)")
        let r = try b.runtimeCommand(["kill", "--all", b.id, "KILL"])
        #expect(r.code == 0, "\(r.stderr)")
        try eventually("the sleep is gone") { procs().isEmpty }
    }

    @Test("exec: into a created container, not a paused one; failures exit 255 in runc's words", arguments: RuntimeUnderTest.all)
    func execStatesAndFailures(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("sleep 100"))
        defer { b.cleanup() }
        #expect(try b.runtimeCommand(["create", b.id]).code == 0)
        let created = try b.runtimeCommand(["exec", b.id, "echo", "joined"])
        #expect(created.code == 0 && created.stdout == "joined\n", "\(created)")
        #expect(try b.runtimeCommand(["start", b.id]).code == 0)
        #expect(try b.runtimeCommand(["pause", b.id]).code == 0)
        let paused = try b.runtimeCommand(["exec", b.id, "true"])
        #expect(paused.code == 255 && paused.stderr.contains("exec failed: cannot exec in a paused container (use --ignore-paused to override)"), "\(paused)")
        #expect(try b.runtimeCommand(["resume", b.id]).code == 0)
        let pidFile = try b.runtimeCommand(["exec", "--pid-file", b.dir + "/no/such/dir/pid", b.id, "true"])
        #expect(pidFile.code == 255 && pidFile.stderr.contains("exec failed:"), "\(pidFile)")
        #expect(try b.runtimeCommand(["exec", b.id, "sh", "-c", "exit 3"]).code == 3)
        let stats = try b.runtimeCommand(["events", "--stats", b.id])
        #expect(stats.stdout.hasPrefix("{\"type\":\"stats\",\"id\":\"\(b.id)\",\"data\":"), "\(stats.stdout.prefix(80))")
    }

    @Test("a capability the host cannot grant fails create", arguments: RuntimeUnderTest.all)
    func ungrantableCapabilityFailsCreate(_ rt: RuntimeUnderTest) throws {
        // A capability outside this process's bounding set (here CAP_SYS_RESOURCE is missing).
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let mask = status.split(separator: "\n").first { $0.hasPrefix("CapBnd:") }.flatMap { UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) } ?? 0
        let names = ["CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_MODULE", "CAP_MAC_ADMIN", "CAP_SYS_BOOT"]
        let numbers = [24, 25, 16, 33, 22]
        guard let i = numbers.indices.first(where: { mask & (1 << UInt64(numbers[$0])) == 0 }) else { return }  // all grantable here
        let b = try TestBundle(rt) {
            shell("echo ran")(&$0)
            var caps = $0.process!.capabilities ?? OCI.Capabilities()
            caps.bounding = (caps.bounding ?? []) + [names[i]]
            caps.permitted = (caps.permitted ?? []) + [names[i]]
            caps.effective = (caps.effective ?? []) + [names[i]]
            $0.process!.capabilities = caps
        }
        defer { b.cleanup() }
        let r = try b.runtimeCommand(["create", b.id])
        #expect(r.code != 0 && r.stderr.contains("unable to apply caps"), "\(r)")
    }

    @Test("a number out of range in config.json names its field", arguments: RuntimeUnderTest.all)
    func outOfRangeNumbersNameTheField(_ rt: RuntimeUnderTest) throws {
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("process.user.uid", { c in var p = c["process"] as! [String: Any]; var u = p["user"] as! [String: Any]; u["uid"] = -1; p["user"] = u; c["process"] = p }),
            ("linux.resources.cpu.shares", { c in var l = c["linux"] as! [String: Any]; l["resources"] = ["cpu": ["shares": -1]]; c["linux"] = l }),
            ("linux.resources.memory.limit", { c in var l = c["linux"] as! [String: Any]; l["resources"] = ["memory": ["limit": 1e300]]; c["linux"] = l }),
        ]
        for (field, edit) in cases {
            let b = try TestBundle(rt, shell("true"))
            defer { b.cleanup() }
            var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: b.dir + "/config.json"))) as! [String: Any]
            edit(&config)
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: b.dir + "/config.json"))
            let r = try b.runtimeCommand(["create", b.id])
            #expect(r.code != 0 && r.stderr.contains(field), "\(field): \(r.stderr)")
        }
    }

    @Test("a rootfs that is a symlink is refused, and so is /proc or /sys as a symlink inside it", arguments: RuntimeUnderTest.all)
    func symlinkedRootfsAndPseudoFilesystems(_ rt: RuntimeUnderTest) throws {
        let linked = try TestBundle(rt, shell("echo ran"))
        defer { linked.cleanup() }
        try FileManager.default.moveItem(atPath: linked.dir + "/rootfs", toPath: linked.dir + "/rootfs-real")
        try FileManager.default.createSymbolicLink(atPath: linked.dir + "/rootfs", withDestinationPath: linked.dir + "/rootfs-real")
        let r = try linked.run()
        #expect(r.code != 0 && r.stdout.isEmpty, "symlinked rootfs: \(r)")
        for dir in ["proc", "sys"] {
            let b = try TestBundle(rt, shell("echo ran"))
            defer { b.cleanup() }
            try FileManager.default.removeItem(atPath: b.dir + "/rootfs/" + dir)
            try FileManager.default.createSymbolicLink(atPath: b.dir + "/rootfs/" + dir, withDestinationPath: "/tmp")
            let r = try b.run()
            #expect(r.code != 0 && r.stdout.isEmpty, "/\(dir) a symlink: \(r)")
        }
    }

    @Test("a NOTIFY rule on write is refused", arguments: RuntimeUnderTest.all)
    func notifyOnWrite(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            shell("echo ran")(&$0)
            $0.linux!.seccomp = try! JSONDecoder().decode(Seccomp.self, from: Data(#"""
                {"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/no-such-agent.sock",
                 "syscalls":[{"names":["write"],"action":"SCMP_ACT_NOTIFY"}]}
                """#.utf8))
        }
        defer { b.cleanup() }
        let r = try b.runtimeCommand(["create", b.id])
        #expect(r.code != 0 && r.stderr.contains("write"), "\(r)")
    }

    @Test("a seccomp agent that is not listening is reported in runc's words", arguments: RuntimeUnderTest.all)
    func missingSeccompAgent(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            shell("echo ran")(&$0)
            $0.linux!.seccomp = try! JSONDecoder().decode(Seccomp.self, from: Data(#"""
                {"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/no-such-agent.sock",
                 "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}
                """#.utf8))
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code != 0 && r.stdout.isEmpty, "\(r)")
        #expect(r.stderr.contains("failed to connect with seccomp agent specified in the seccomp profile: dial unix /run/no-such-agent.sock: connect: no such file or directory"), "\(r.stderr)")
    }

    @Test("rootfsPropagation rshared lets a mount made inside reach the host (Bidirectional)", arguments: RuntimeUnderTest.all)
    func bidirectionalPropagation(_ rt: RuntimeUnderTest) throws {
        let host = NSTemporaryDirectory() + "srunc-bidi-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: host + "/sub", withIntermediateDirectories: true)
        #expect(try execute("/bin/mount", ["--bind", host, host]).code == 0)
        #expect(try execute("/bin/mount", ["--make-shared", host]).code == 0)
        defer {
            _ = try? execute("/bin/umount", ["-l", host + "/sub"])
            _ = try? execute("/bin/umount", ["-l", host])
            try? FileManager.default.removeItem(atPath: host)
        }
        let b = try TestBundle(rt) {
            shell("mount -t tmpfs bidi /mnt/sub && echo mounted")(&$0)
            $0.mounts!.append(OCI.Mount(destination: "/mnt", type: "bind", source: host, options: ["rbind", "rshared"]))
            $0.linux!.rootfsPropagation = "rshared"
            var caps = $0.process!.capabilities ?? OCI.Capabilities()
            for set in [\OCI.Capabilities.bounding, \.effective, \.permitted] { caps[keyPath: set] = (caps[keyPath: set] ?? []) + ["CAP_SYS_ADMIN"] }
            $0.process!.capabilities = caps
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0 && r.stdout == "mounted\n", "\(r)")
        let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        #expect(mounts.contains(" " + host + "/sub "), "the container's tmpfs reached the host")
    }

    @Test("a read-only /dev mount is filled, then read-only", arguments: RuntimeUnderTest.all)
    func readOnlyDev(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            shell("touch /dev/x 2>/dev/null || echo ro; [ -c /dev/null ] && echo null; [ -d /dev/pts ] && echo pts")(&$0)
            $0.mounts = ($0.mounts ?? []).map { m in
                guard m.destination == "/dev" else { return m }
                var m = m
                m.options = (m.options ?? []) + ["ro"]
                return m
            }
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0 && r.stdout == "ro\nnull\npts\n", "\(r)")
    }

    @Test("rro makes a bind mount and every mount below it read-only", arguments: RuntimeUnderTest.all)
    func recursiveReadOnly(_ rt: RuntimeUnderTest) throws {
        let host = NSTemporaryDirectory() + "srunc-rro-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: host + "/sub", withIntermediateDirectories: true)
        #expect(try execute("/bin/mount", ["-t", "tmpfs", "rro-test", host + "/sub"]).code == 0)
        defer {
            _ = try? execute("/bin/umount", ["-l", host + "/sub"])
            try? FileManager.default.removeItem(atPath: host)
        }
        let b = try TestBundle(rt) {
            shell("touch /mnt/sub/x 2>/dev/null || echo sub-ro; touch /mnt/x 2>/dev/null || echo top-ro")(&$0)
            $0.mounts!.append(OCI.Mount(destination: "/mnt", type: "bind", source: host, options: ["rbind", "rro"]))
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0 && r.stdout == "sub-ro\ntop-ro\n", "\(r)")
    }

    @Test("--log creates its file on every verb, errors or not", arguments: RuntimeUnderTest.all)
    func logFileOnEveryVerb(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("true"))
        defer { b.cleanup() }
        for (i, verb) in [["list"], ["state", "no-such-container"], ["spec", "--bundle", b.dir + "/spec-dir"]].enumerated() {
            try? FileManager.default.createDirectory(atPath: b.dir + "/spec-dir", withIntermediateDirectories: true)
            let log = b.dir + "/verb-\(i).log"
            _ = try b.runtimeCommand(["--log", log] + verb)
            #expect(FileManager.default.fileExists(atPath: log), "\(verb)")
        }
    }

    @Test("--debug logs the runtime's steps: to stderr, or to the --log file", arguments: RuntimeUnderTest.all)
    func debugLines(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("echo ran"))
        defer { b.cleanup() }
        let toStderr = try b.runtimeCommand(["--debug", "run", b.id])
        #expect(toStderr.code == 0 && toStderr.stdout == "ran\n" && toStderr.stderr.contains("level=debug"), "\(toStderr)")
        let log = b.dir + "/debug.log"
        let toFile = try b.runtimeCommand(["--debug", "--log", log, "run", b.id])
        #expect(toFile.code == 0 && !toFile.stderr.contains("level=debug"), "\(toFile)")
        #expect(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("level=debug"))
        let quiet = try b.runtimeCommand(["run", b.id])
        #expect(quiet.code == 0 && !quiet.stderr.contains("level=debug"), "\(quiet)")
    }
}
