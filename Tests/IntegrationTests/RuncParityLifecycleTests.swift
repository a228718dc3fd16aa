import Foundation
import OCI
import Testing

/// Issue 13's create/start/exec behaviours (hooks, crash safety, mount namespaces, exec's
/// cgroups and pid file), each through srunc and runc.
@Suite("runc parity: lifecycle") struct RuncParityLifecycleTests {
    /// A host directory every user may write, removed by the caller.
    static func scratch(_ kind: String) throws -> String {
        let dir = NSTemporaryDirectory() + uniqueTestName(kind)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o777)
        return dir
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "<missing>" }

    static func cgroupProcs(_ cgroup: String) -> [String] {
        read("/sys/fs/cgroup/pids\(cgroup)/cgroup.procs").split(separator: "\n").map(String.init).filter { $0 != "<missing>" }
    }

    /// Removes a test's cgroup from every hierarchy (after the runtime had its chance to).
    static func removeCgroup(_ cgroup: String) {
        for h in (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? [] { rmdir("/sys/fs/cgroup/\(h)\(cgroup)") }
    }

    @Test("hooks run where runc runs them: prestart in the bundle, createContainer in the rootfs, startContainer under seccomp as the process's user, poststart after exec",
          arguments: RuntimeUnderTest.all)
    func hookPlaces(_ rt: RuntimeUnderTest) throws {
        let host = try Self.scratch("hook-places")
        defer { try? FileManager.default.removeItem(atPath: host) }
        let b = try TestBundle(rt) {
            shell("sleep 1000; true")(&$0)
            $0.process!.user = User(uid: 1000, gid: 1000)
            $0.mounts!.append(OCI.Mount(destination: "/out", type: "bind", source: host, options: ["rbind"]))
            $0.linux!.seccomp = try! JSONDecoder().decode(Seccomp.self, from: Data(#"""
                {"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}
                """#.utf8))
            var hooks = Hooks()
            hooks.prestart = [Hook(path: "/bin/sh", args: ["sh", "-c", "pwd > \(host)/prestart-cwd"])]
            hooks.createContainer = [Hook(path: "/bin/sh", args: ["sh", "-c", "pwd > \(host)/createContainer-cwd"])]
            hooks.startContainer = [Hook(path: "/bin/sh", args: ["sh", "-c", "id -u > /out/start-uid; mkdir /tmp/probe 2>/dev/null && echo made > /out/start-mkdir || echo refused > /out/start-mkdir"])]
            hooks.poststart = [Hook(path: "/bin/sh", args: ["sh", "-c", "pid=$(grep -o '\"pid\":[0-9]*' | cut -d: -f2); tr '\\0' ' ' < /proc/$pid/cmdline > \(host)/poststart-cmdline"])]
            $0.hooks = hooks
        }
        defer { b.cleanup() }
        // From another directory: the runtime itself moves into the bundle.
        let created = try execute(rt.binary, ["--root", b.stateRoot, "create", "--bundle", b.dir, b.id], cwd: "/")
        #expect(created.code == 0, "\(created)")
        #expect(Self.read(host + "/prestart-cwd") == b.dir + "\n")
        #expect(Self.read(host + "/createContainer-cwd") == b.rootfs + "\n")
        #expect(try b.runtimeCommand(["start", b.id]).code == 0)
        #expect(Self.read(host + "/start-uid") == "1000\n")
        #expect(Self.read(host + "/start-mkdir") == "refused\n", "startContainer runs under the container's seccomp filter")
        // The spec: poststart runs after the process is executed. runc 1.1 runs it once the init
        // has written exec.fifo, before its exec, so its hook may see `runc init` (a race srunc
        // does not copy: start waits for the fifo's EOF, which exec causes).
        if rt.name == "srunc" {
            #expect(Self.read(host + "/poststart-cmdline") == "sh -c sleep 1000; true ", "poststart sees the container's own process")
        }
    }

    @Test("a creator killed mid-create leaves no process behind; delete --force then leaves nothing",
          arguments: RuntimeUnderTest.all, [false, true])
    func creatorKilledMidCreate(_ rt: RuntimeUnderTest, throughIntermediate: Bool) throws {
        let cgroup = "/" + uniqueTestName("killed-create")
        defer { Self.removeCgroup(cgroup) }
        let b = try TestBundle(rt) {
            shell("echo ran")(&$0)
            $0.linux!.cgroupsPath = cgroup
            if throughIntermediate {
                // A namespace joined by path: the init is not the creator's own child.
                $0.linux!.namespaces = $0.linux!.namespaces!.filter { $0.type != "uts" } + [Namespace(type: "uts", path: "/proc/\(getpid())/ns/uts")]
            }
            var hooks = Hooks()
            hooks.prestart = [Hook(path: "/bin/sh", args: ["sh", "-c", "kill -9 $PPID"])]  // the runtime running the hook
            $0.hooks = hooks
        }
        defer { b.cleanup() }
        let r = try b.runtimeCommand(["create", b.id])
        #expect(r.code == 128 + SIGKILL, "\(r)")
        try eventually("the half-made container's init is gone") { Self.cgroupProcs(cgroup).isEmpty }
        let deleted = try b.runtimeCommand(["delete", "--force", b.id])
        #expect(deleted.code == 0, "\(deleted)")
        #expect(!FileManager.default.fileExists(atPath: b.stateRoot + "/" + b.id))
        // runc leaves the cgroup of a create that died (issue 13 counted 14 of 50); srunc does not.
        if rt.name == "srunc" { #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/pids" + cgroup)) }
    }

    @Test("a config without a mount namespace shares the caller's, rooted in the rootfs", arguments: RuntimeUnderTest.all)
    func withoutMountNamespace(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            shell("readlink /proc/self/ns/mnt; cat /marker")(&$0)
            $0.linux!.namespaces = $0.linux!.namespaces!.filter { $0.type != "mount" }
            $0.linux!.maskedPaths = nil
            $0.linux!.readonlyPaths = nil
            $0.root!.readonly = false
        }
        defer {
            // runc leaves the mounts it made under the rootfs in the caller's namespace.
            if rt.name == "runc" { _ = try? execute("/bin/sh", ["-c", "grep -o ' \(b.rootfs)[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l"]) }
            b.cleanup()
        }
        try "in the rootfs\n".write(toFile: b.rootfs + "/marker", atomically: true, encoding: .utf8)
        let ours = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/mnt")
        let r = try b.run()
        #expect(r.code == 0 && r.stdout == ours + "\nin the rootfs\n", "\(r)")

        let masked = try TestBundle(rt) { shell("true")(&$0); $0.linux!.namespaces = $0.linux!.namespaces!.filter { $0.type != "mount" } }
        defer { masked.cleanup() }
        let refused = try masked.run()
        #expect(refused.code != 0 && refused.stderr.contains("unable to restrict sys entries without a private MNT namespace"), "\(refused)")
    }

    @Test("a bind source only root can reach is mounted into a user-namespaced container", arguments: RuntimeUnderTest.all)
    func rootOnlyBindSourceInUserNamespace(_ rt: RuntimeUnderTest) throws {
        let secret = NSTemporaryDirectory() + uniqueTestName("root-only")
        try FileManager.default.createDirectory(atPath: secret + "/data", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: secret) }
        try "only root gets here\n".write(toFile: secret + "/data/file", atomically: true, encoding: .utf8)
        chmod(secret, 0o700)  // the container's root (host uid 200000) cannot pass through it
        let b = try TestBundle(rt) {
            shell("cat /mnt/file")(&$0)
            $0.linux!.namespaces!.append(Namespace(type: "user"))
            $0.linux!.uidMappings = [IDMapping(containerID: 0, hostID: 200000, size: 65536)]
            $0.linux!.gidMappings = [IDMapping(containerID: 0, hostID: 200000, size: 65536)]
            $0.mounts!.append(OCI.Mount(destination: "/mnt", type: "bind", source: secret + "/data", options: ["rbind", "ro"]))
        }
        defer { b.cleanup() }
        #expect(try execute("/bin/chown", ["-R", "200000:200000", b.rootfs]).code == 0)
        let r = try b.run()
        #expect(r.code == 0 && r.stdout == "only root gets here\n", "\(r)")
    }

    @Test("--no-pivot leaves no full /proc for a nested user namespace to mount proc from", arguments: RuntimeUnderTest.all)
    func noPivotHidesHostProc(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            $0.process!.args = ["unshare", "-mrpf", "sh", "-c", "mount -t proc none /proc && echo mounted"]
            // Mapping root in a child user namespace needs CAP_SETFCAP (Linux 5.12+).
            var caps = $0.process!.capabilities ?? OCI.Capabilities()
            for set in [\OCI.Capabilities.bounding, \.effective, \.permitted] { caps[keyPath: set] = (caps[keyPath: set] ?? []) + ["CAP_SETFCAP"] }
            $0.process!.capabilities = caps
        }
        defer { b.cleanup() }
        let r = try b.run(["--no-pivot"])
        #expect(r.code != 0 && !r.stdout.contains("mounted") && r.stderr.contains("permission denied"), "\(r)")
    }

    @Test("exec --cgroup puts the process in a sub-cgroup; .. and unknown controllers are refused", arguments: RuntimeUnderTest.all)
    func execIntoSubCgroup(_ rt: RuntimeUnderTest) throws {
        let cgroup = "/" + uniqueTestName("exec-cgroup")
        let b = try TestBundle(rt) { shell("sleep 1000")(&$0); $0.linux!.cgroupsPath = cgroup }
        defer {
            b.cleanup()
            for h in ["pids", "memory"] { rmdir("/sys/fs/cgroup/\(h)\(cgroup)/sub") }
            Self.removeCgroup(cgroup)
        }
        #expect(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        for h in ["pids", "memory"] { mkdir("/sys/fs/cgroup/\(h)\(cgroup)/sub", 0o755) }
        let r = try b.runtimeCommand(["exec", "--cgroup", "pids,memory:sub", b.id, "cat", "/proc/self/cgroup"])
        #expect(r.code == 0, "\(r)")
        let lines = r.stdout.split(separator: "\n").map { $0.split(separator: ":", maxSplits: 2).dropFirst().joined(separator: ":") }
        #expect(lines.contains("pids:\(cgroup)/sub") && lines.contains("memory:\(cgroup)/sub") && lines.contains("cpu:\(cgroup)"), "\(r.stdout)")
        let everywhere = try b.runtimeCommand(["exec", "--cgroup", "sub", b.id, "true"])
        #expect(everywhere.code == 255 && everywhere.stderr.contains("exec failed:"), "sub exists in two hierarchies only: \(everywhere)")
        let climbing = try b.runtimeCommand(["exec", "--cgroup", "../..", b.id, "true"])
        #expect(climbing.code == 255 && climbing.stderr.contains("../.. is not a sub cgroup path"), "\(climbing)")
        let unknown = try b.runtimeCommand(["exec", "--cgroup", "nosuch:sub", b.id, "true"])
        #expect(unknown.code == 255 && unknown.stderr.contains("unknown controller nosuch"), "\(unknown)")
    }

    @Test("exec --pid-file into a missing directory fails and leaves no process", arguments: RuntimeUnderTest.all)
    func execPidFileInMissingDirectory(_ rt: RuntimeUnderTest) throws {
        let cgroup = "/" + uniqueTestName("exec-pidfile")
        let b = try TestBundle(rt) { shell("sleep 1000")(&$0); $0.linux!.cgroupsPath = cgroup }
        defer { b.cleanup(); Self.removeCgroup(cgroup) }
        #expect(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        let r = try b.runtimeCommand(["exec", "--detach", "--pid-file", b.dir + "/no/such/dir/pid", b.id, "sleep", "999"])
        #expect(r.code == 255 && r.stderr.contains("exec failed: open \(b.dir)/no/such/dir/.pid: no such file or directory"), "\(r)")
        try eventually("only the container's own process is left") { Self.cgroupProcs(cgroup).count == 1 }
    }
}
