import Foundation
import OCI
import Testing

/// Issue 13's cgroup behaviours (update, pod parents, devices, blkio, freezer), through srunc
/// and runc. They read v1 files: this suite runs on v1 and hybrid hosts.
@Suite("runc parity: cgroups") struct RuncParityCgroupTests {
    static let v1 = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    static let unlimited = "9223372036854771712\n"

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "<missing>" }

    /// Removes a cgroup and its children from every hierarchy, deepest first.
    static func removeCgroup(_ cgroup: String, children: [String] = []) {
        for h in (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? [] {
            for c in children { rmdir("/sys/fs/cgroup/\(h)\(cgroup)/\(c)") }
            rmdir("/sys/fs/cgroup/\(h)\(cgroup)")
        }
    }

    @Test("a pod cgroup with an empty cpuset is filled from its parent, at create and at update", arguments: RuntimeUnderTest.all)
    func emptyPodCpuset(_ rt: RuntimeUnderTest) throws {
        guard Self.v1 else { return }
        let pod = "/" + uniqueTestName("pod")
        #expect(mkdir("/sys/fs/cgroup/cpuset" + pod, 0o755) == 0)
        defer { Self.removeCgroup(pod, children: ["ctr"]) }
        #expect(Self.read("/sys/fs/cgroup/cpuset\(pod)/cpuset.cpus") == "\n", "a new v1 cpuset starts empty")
        let b = try TestBundle(rt) { shell("sleep 1000")(&$0); $0.linux!.cgroupsPath = pod + "/ctr" }
        defer { b.cleanup() }
        let r = try b.runtimeCommand(["run", "--detach", b.id])
        #expect(r.code == 0, "\(r)")
        let u = try b.runtimeCommand(["update", "--cpuset-cpus", "0", b.id])
        #expect(u.code == 0, "\(u)")
        #expect(Self.read("/sys/fs/cgroup/cpuset\(pod)/ctr/cpuset.cpus") == "0\n")
        #expect(Self.read("/sys/fs/cgroup/cpuset\(pod)/cpuset.cpus") == Self.read("/sys/fs/cgroup/cpuset/cpuset.cpus"))
    }

    @Test("update --memory -1 lifts the memory and swap limits together; kernel memory is never written", arguments: RuntimeUnderTest.all)
    func unlimitedMemoryWithSwap(_ rt: RuntimeUnderTest) throws {
        guard Self.v1 else { return }
        let cgroup = "/" + uniqueTestName("memory")
        let b = try TestBundle(rt) {
            shell("sleep 1000")(&$0)
            $0.linux!.cgroupsPath = cgroup
            $0.linux!.resources = Resources()
            $0.linux!.resources!.memory = Memory(limit: 32 << 20, swap: 64 << 20)
        }
        defer { b.cleanup(); Self.removeCgroup(cgroup) }
        #expect(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        let dir = "/sys/fs/cgroup/memory" + cgroup
        #expect(Self.read(dir + "/memory.memsw.limit_in_bytes") == "\(64 << 20)\n")
        let r = try b.runtimeCommand(["update", "--memory", "-1", b.id])
        #expect(r.code == 0, "\(r)")
        #expect(Self.read(dir + "/memory.limit_in_bytes") == Self.unlimited)
        #expect(Self.read(dir + "/memory.memsw.limit_in_bytes") == Self.unlimited)
        let tcp = try b.runtimeCommand(["update", "--kernel-memory-tcp", "10485760", b.id])
        #expect(tcp.code == 0, "\(tcp)")
        #expect(Self.read(dir + "/memory.kmem.tcp.limit_in_bytes") == Self.unlimited)
    }

    @Test("device access letters in any order", arguments: RuntimeUnderTest.all)
    func deviceAccessStrings(_ rt: RuntimeUnderTest) throws {
        // /dev/fuse: a device no runtime allows by default, which root may open.
        func config(_ access: String) -> (inout Spec) -> Void {
            { spec in
                shell("exec 3<>/dev/fuse && echo opened")(&spec)
                spec.linux!.devices = [Device(type: "c", path: "/dev/fuse", major: 10, minor: 229, fileMode: 0o600, uid: 0, gid: 0)]
                spec.linux!.resources = Resources()
                spec.linux!.resources!.devices = [DeviceRule(allow: false, access: "rwm"),
                                                  DeviceRule(allow: true, type: "c", major: 10, minor: 229, access: access)]
            }
        }
        for access in ["wr", "mwr", "rwm"] {
            let b = try TestBundle(rt, config(access))
            defer { b.cleanup() }
            let r = try b.run()
            #expect(r.code == 0 && r.stdout == "opened\n", "\(access): \(r)")
        }
        let denied = try TestBundle(rt, config("m"))
        defer { denied.cleanup() }
        let r = try denied.run()
        #expect(r.code != 0 && r.stdout.isEmpty, "mknod only: the open is refused: \(r)")
    }

    @Test("unified resources on a v1 host are refused in runc's words", arguments: RuntimeUnderTest.all)
    func unifiedOnV1(_ rt: RuntimeUnderTest) throws {
        guard Self.v1 else { return }
        let b = try TestBundle(rt) {
            shell("echo ran")(&$0)
            $0.linux!.resources = Resources()
            $0.linux!.resources!.unified = ["memory.max": "10000000"]
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code != 0 && r.stdout.isEmpty && r.stderr.contains("invalid configuration: cannot use unified on cgroup v1"), "\(r)")
    }

    @Test("blkio weight goes to BFQ's file, else CFQ's, else nowhere without failing", arguments: RuntimeUnderTest.all)
    func blkioWeight(_ rt: RuntimeUnderTest) throws {
        guard Self.v1 else { return }
        let cgroup = "/" + uniqueTestName("blkio")
        let b = try TestBundle(rt) {
            shell("sleep 1000")(&$0)
            $0.linux!.cgroupsPath = cgroup
            $0.linux!.resources = Resources()
            $0.linux!.resources!.blockIO = BlockIO()
            $0.linux!.resources!.blockIO!.weight = 500
        }
        defer { b.cleanup(); Self.removeCgroup(cgroup) }
        let r = try b.runtimeCommand(["run", "--detach", b.id])
        #expect(r.code == 0, "\(r)")
        let dir = "/sys/fs/cgroup/blkio" + cgroup
        if FileManager.default.fileExists(atPath: dir + "/blkio.bfq.weight") {
            #expect(Self.read(dir + "/blkio.bfq.weight").hasSuffix("500\n"))
        } else if FileManager.default.fileExists(atPath: dir + "/blkio.weight") {
            #expect(Self.read(dir + "/blkio.weight") == "500\n")
        }
    }

    @Test("a cgroup that is already frozen fails create instead of hanging it", arguments: RuntimeUnderTest.all)
    func frozenCgroup(_ rt: RuntimeUnderTest) throws {
        guard Self.v1 else { return }
        let cgroup = "/" + uniqueTestName("frozen")
        let freezer = "/sys/fs/cgroup/freezer" + cgroup
        #expect(mkdir(freezer, 0o755) == 0)
        try "FROZEN".write(toFile: freezer + "/freezer.state", atomically: false, encoding: .utf8)
        defer {
            try? "THAWED".write(toFile: freezer + "/freezer.state", atomically: false, encoding: .utf8)
            Self.removeCgroup(cgroup)
        }
        let b = try TestBundle(rt) { shell("echo ran")(&$0); $0.linux!.cgroupsPath = cgroup }
        defer { b.cleanup() }
        let out = b.dir + "/run.out", err = b.dir + "/run.err"
        let pid = try spawn(rt.binary, ["--root", b.stateRoot, "run", b.id], cwd: b.dir, stdout: out, stderr: err)
        #expect(try exitCode(of: pid) != 0 && Self.read(out).isEmpty)
        #expect(Self.read(err).contains("container's cgroup unexpectedly frozen"), "\(Self.read(err))")
    }
}
