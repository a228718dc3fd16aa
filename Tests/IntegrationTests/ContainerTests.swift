import Foundation
import OCI
import Testing

/// Real containers, each scenario through srunc and through runc: both must show the same thing.
@Suite("containers", .serialized) struct ContainerTests {
    @Test("output and exit codes", arguments: RuntimeUnderTest.all)
    func exitCodes(_ rt: RuntimeUnderTest) throws {
        let cases: [(String, Int32)] = [("echo out; echo err >&2", 0), ("exit 42", 42), ("kill -9 $$", 137), ("kill -TERM $$", 143)]
        for (script, expected) in cases {
            // Without a pid namespace, the shell is no pid-1 and can be killed by its own signal.
            let b = try TestBundle(rt) {
                shell(script)(&$0)
                $0.linux!.namespaces!.removeAll { $0.type == "pid" }
            }
            defer { b.cleanup() }
            let r = try b.run()
            #expect(r.code == expected, "\(rt) \(script): \(r.stderr)")
            if expected == 0 {
                #expect(r.stdout == "out\n")
                #expect(r.stderr == "err\n")
            }
        }
    }

    @Test("SIGKILL from outside gives 137", arguments: RuntimeUnderTest.all)
    func killedFromOutside(_ rt: RuntimeUnderTest) async throws {
        let b = try TestBundle(rt, shell("echo started; sleep 100"))
        defer { b.cleanup() }
        // On a thread of its own: a Task could wait for a cooperative thread that other tests' blocking bodies hold.
        let run = BackgroundRun { try b.run() }
        let status = try await b.waitForStatus("running")
        #expect(status == "running")
        if rt.name == "srunc" {
            // srunc stays single-threaded: the `run` process (the init's parent) has one thread.
            let pid = try #require(try b.state()?["pid"] as? Int)
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            let ppid = try #require(status.split(separator: "\n").first { $0.hasPrefix("PPid:") }?.split(separator: "\t").last)
            let parent = try String(contentsOfFile: "/proc/\(ppid)/status", encoding: .utf8)
            #expect(parent.contains("Name:\tsrunc"))
            #expect(parent.contains("Threads:\t1\n"))
        }
        #expect(try b.runtimeCommand(["kill", b.id, "KILL"]).code == 0)
        let r = try run.value()
        #expect(r.code == 137)
        #expect(r.stdout == "started\n")
    }

    @Test("hostname, identity, capabilities and no_new_privs", arguments: RuntimeUnderTest.all)
    func identity(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            shell("hostname; grep -E '^(Uid|Gid|Groups|CapEff|CapBnd|CapAmb|CapPrm|NoNewPrivs):' /proc/self/status; umask")(&$0)
            $0.process!.user = User(uid: 1000, gid: 1000, umask: 0o027, additionalGids: [100, 5])
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map { $0.split(whereSeparator: { $0 == "\t" || $0 == " " }).joined(separator: " ") }
        #expect(lines.first == "srunc-demo")
        #expect(lines.contains("Uid: 1000 1000 1000 1000"))
        #expect(lines.contains("Gid: 1000 1000 1000 1000"))
        #expect(lines.contains("Groups: 5 100") || lines.contains("Groups: 100 5"))
        // exec as a non-root user without ambient caps empties permitted and effective.
        #expect(lines.contains("CapEff: 0000000000000000"))
        #expect(lines.contains("CapPrm: 0000000000000000"))
        #expect(lines.contains("CapBnd: 00000000200004e1"))
        #expect(lines.contains("CapAmb: 0000000000000000"))
        #expect(lines.contains("NoNewPrivs: 1"))
        #expect(lines.last == "0027")
    }

    @Test("root keeps exactly the configured capabilities", arguments: RuntimeUnderTest.all)
    func rootCapabilities(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("grep -E '^Cap' /proc/self/status"))
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout == "CapInh:\t0000000000000000\nCapPrm:\t00000000200004e1\nCapEff:\t00000000200004e1\n"
            + "CapBnd:\t00000000200004e1\nCapAmb:\t0000000000000000\n")
    }

    @Test("ambient capabilities reach a non-root process", arguments: RuntimeUnderTest.all)
    func ambient(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            shell("grep -E '^Cap(Eff|Amb|Inh)' /proc/self/status")(&$0)
            $0.process!.user = User(uid: 1000, gid: 1000)
            let caps = ["CAP_NET_BIND_SERVICE"]
            $0.process!.capabilities = OCI.Capabilities(bounding: caps, effective: caps, inheritable: caps, permitted: caps, ambient: caps)
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout.contains("CapAmb:\t0000000000000400"))
        #expect(r.stdout.contains("CapEff:\t0000000000000400"))
    }

    @Test("mounts, read-only root, masked and read-only paths", arguments: RuntimeUnderTest.all)
    func mounts(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("""
            cat /proc/self/mountinfo
            touch /rootfile 2>/dev/null && echo root-writable || echo root-readonly
            touch /tmp/x && echo tmp-writable
            echo kcore=$(cat /proc/kcore | wc -c) firmware=$(ls /sys/firmware | wc -l)
            echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-writable || echo sys-readonly
            """))
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        let mountinfo = r.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        func mount(_ point: String) -> [String]? { mountinfo.last { $0.count > 8 && $0[4] == point } }
        #expect(mount("/")?[5].hasPrefix("ro") == true)
        #expect(mount("/proc").map { $0[$0.firstIndex(of: "-")! + 1] } == "proc")
        #expect(mount("/dev/pts").map { $0[$0.firstIndex(of: "-")! + 1] } == "devpts")
        #expect(mount("/tmp")?[5].contains("nosuid") == true)
        #expect(mount("/proc/sys")?[5].hasPrefix("ro") == true)
        #expect(mount("/sys")?[5].hasPrefix("ro") == true)
        #expect(r.stdout.contains("root-readonly"))
        #expect(r.stdout.contains("tmp-writable"))
        #expect(r.stdout.contains("kcore=0 firmware=0"))
        #expect(r.stdout.contains("sys-readonly"))
    }

    @Test("bind mounts with options", arguments: RuntimeUnderTest.all)
    func bindMount(_ rt: RuntimeUnderTest) throws {
        let host = NSTemporaryDirectory() + "srunc-bind-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        try "from-host\n".write(toFile: host + "/file", atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: host) }
        let b = try TestBundle(rt) {
            shell("cat /data/file; touch /data/new 2>/dev/null && echo writable || echo readonly; cat /single")(&$0)
            $0.mounts!.append(OCI.Mount(destination: "/data", type: "bind", source: host, options: ["rbind", "ro", "nosuid"]))
            $0.mounts!.append(OCI.Mount(destination: "/single", type: "none", source: host + "/file", options: ["bind"]))
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout == "from-host\nreadonly\nfrom-host\n")
    }

    @Test("device nodes", arguments: RuntimeUnderTest.all)
    func devices(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            shell("stat -c '%n %F %t %T %a %u %g' /dev/null /dev/zero /dev/urandom /dev/tty /dev/mydev; readlink /dev/fd; readlink /dev/ptmx; echo x > /dev/null && echo null-ok")(&$0)
            $0.linux!.devices = [Device(type: "c", path: "/dev/mydev", major: 1, minor: 7, fileMode: 0o640, uid: 1000, gid: 1000)]
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout == """
            /dev/null character special file 1 3 666 0 0
            /dev/zero character special file 1 5 666 0 0
            /dev/urandom character special file 1 9 666 0 0
            /dev/tty character special file 5 0 666 0 0
            /dev/mydev character special file 1 7 640 1000 1000
            /proc/self/fd
            pts/ptmx
            null-ok

            """)
    }

    @Test("rlimits", arguments: RuntimeUnderTest.all)
    func rlimits(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            shell("grep -E 'Max (open files|processes|core file size)' /proc/self/limits")(&$0)
            $0.process!.rlimits = [Rlimit(type: "RLIMIT_NOFILE", hard: 512, soft: 256),
                                   Rlimit(type: "RLIMIT_NPROC", hard: 800, soft: 700),
                                   Rlimit(type: "RLIMIT_CORE", hard: 0, soft: 0)]
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        let rows = r.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(rows.contains("Max core file size 0 0 bytes"))
        #expect(rows.contains("Max processes 700 800 processes"))
        #expect(rows.contains("Max open files 256 512 files"))
    }

    @Test("namespaces differ from the host's", arguments: RuntimeUnderTest.all)
    func namespaces(_ rt: RuntimeUnderTest) throws {
        let kinds = ["pid", "net", "ipc", "uts", "mnt"]
        let b = try TestBundle(rt, shell(kinds.map { "readlink /proc/self/ns/\($0)" }.joined(separator: "; ")))
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        let inside = r.stdout.split(separator: "\n").map(String.init)
        #expect(inside.count == kinds.count)
        for (kind, seen) in zip(kinds, inside) {
            let host = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/\(kind)")
            #expect(seen.hasPrefix(kind + ":["))
            #expect(seen != host, "\(kind) namespace is the host's")
        }
    }

    @Test("joining another container's network and ipc namespaces", arguments: RuntimeUnderTest.all)
    func joinNamespaces(_ rt: RuntimeUnderTest) throws {
        let first = try TestBundle(rt, shell("sleep 100"))
        defer { first.cleanup() }
        #expect(try first.runtimeCommand(["create", first.id]).code == 0)
        let pid = try #require(first.state()?["pid"] as? Int)
        let hostView = try ["net", "ipc"].map { try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\($0)") }
        let second = try TestBundle(rt) {
            shell("readlink /proc/self/ns/net; readlink /proc/self/ns/ipc")(&$0)
            $0.linux!.namespaces = $0.linux!.namespaces!.map {
                $0.type == "network" ? Namespace(type: "network", path: "/proc/\(pid)/ns/net")
                    : $0.type == "ipc" ? Namespace(type: "ipc", path: "/proc/\(pid)/ns/ipc") : $0
            }
        }
        defer { second.cleanup() }
        let r = try second.run()
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout == hostView.joined(separator: "\n") + "\n")
    }

    @Test("user namespace with uid and gid maps", arguments: RuntimeUnderTest.all)
    func userNamespace(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            shell("cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c '%u' /; readlink /proc/self/ns/user")(&$0)
            $0.linux!.namespaces!.append(Namespace(type: "user"))
            $0.linux!.uidMappings = [IDMapping(containerID: 0, hostID: 200000, size: 65536)]
            $0.linux!.gidMappings = [IDMapping(containerID: 0, hostID: 200000, size: 65536)]
        }
        defer { b.cleanup() }
        #expect(try execute("/bin/chown", ["-R", "200000:200000", b.rootfs]).code == 0)
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(Array(lines.prefix(4)) == ["0 200000 65536", "0 200000 65536", "0", "0"])
        let hostUserNS = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/user")
        #expect(lines.count == 5 && lines[4] != hostUserNS)
    }

    @Test("only stdio and --preserve-fds reach the container", arguments: RuntimeUnderTest.all)
    func fileDescriptors(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("exec sleep 100"))
        defer { b.cleanup() }
        try "preserved\n".write(toFile: b.dir + "/fd3", atomically: true, encoding: .utf8)
        // fd 7 is open in the caller but not preserved: it must not leak. The container's fds
        // are read from the host, so no helper process inside adds fds of its own.
        let script = "exec 3<\(b.dir)/fd3 7</etc/passwd; exec \(rt.binary) --root \(b.stateRoot) run --detach --preserve-fds 1 \(b.id)"
        let r = try execute("/bin/sh", ["-c", script], cwd: b.dir)
        #expect(r.code == 0, "\(r.stderr)")
        let pid = try #require(try b.state()?["pid"] as? Int)
        var fds: [String] = []
        // Wait for the exec of sleep (the init's own fds are gone once it has exec'd).
        try eventually("the init has exec'd sleep") { try String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8).hasPrefix("sleep") }
        fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").sorted()
        #expect(fds == ["0", "1", "2", "3"])
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/3") == b.dir + "/fd3")
    }

    @Test("create, start, state, list and delete", arguments: RuntimeUnderTest.all)
    func lifecycle(_ rt: RuntimeUnderTest) async throws {
        let b = try TestBundle(rt, shell("sleep 100"))
        defer { b.cleanup() }
        let pidFile = b.dir + "/init.pid"
        let created = try b.runtimeCommand(["create", "--pid-file", pidFile, b.id])
        #expect(created.code == 0, "\(created.stderr)")
        let state = try #require(try b.state())
        #expect(state["status"] as? String == "created")
        #expect(state["id"] as? String == b.id)
        #expect(state["bundle"] as? String == b.dir)
        let pid = try #require(state["pid"] as? Int)
        #expect(try String(contentsOfFile: pidFile, encoding: .utf8) == String(pid))
        let list = try b.runtimeCommand(["list", "--format", "json"])
        let entries = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]
        #expect(entries?.first?["id"] as? String == b.id)
        #expect(try b.runtimeCommand(["list", "-q"]).stdout == b.id + "\n")
        #expect(try b.runtimeCommand(["start", b.id]).code == 0)
        #expect(try b.state()?["status"] as? String == "running")
        let refused = try b.runtimeCommand(["delete", b.id])
        #expect(refused.code != 0)
        #expect(refused.stderr.contains("running"))
        #expect(try b.runtimeCommand(["kill", b.id, "SIGKILL"]).code == 0)
        let status = try await b.waitForStatus("stopped")
        #expect(status == "stopped")
        #expect(try b.state()?["pid"] as? Int == 0)
        #expect(try b.runtimeCommand(["delete", b.id]).code == 0)
        #expect(try b.state() == nil)
        #expect(!FileManager.default.fileExists(atPath: b.stateRoot + "/" + b.id))
    }

    @Test("deleting a created container kills its init", arguments: RuntimeUnderTest.all)
    func deleteCreated(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("sleep 100"))
        defer { b.cleanup() }
        #expect(try b.runtimeCommand(["create", b.id]).code == 0)
        let pid = try #require(try b.state()?["pid"] as? Int)
        #expect(try b.runtimeCommand(["delete", b.id]).code == 0)
        let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        #expect(stat == nil || stat!.contains(") Z "), "init \(pid) still alive")
    }
}
