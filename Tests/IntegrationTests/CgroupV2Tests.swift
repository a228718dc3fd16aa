import Foundation
import OCI
import Testing

/// cgroup v2 for real: srunc drives the unified hierarchy of this hybrid host (SRUNC_CGROUP2_MOUNT)
/// as it would a v2-only host: device rules as an eBPF program, the init born in its cgroup,
/// freezing, sub-cgroups, and controllers the tree lacks refused. runc and srunc on v1 show
/// the same device rules through the devices controller.
@Suite("cgroup v2") struct CgroupV2Tests {
    static let unified = "/sys/fs/cgroup/unified"

    /// The container init's v2 cgroup directory on the host, from /proc/PID/cgroup.
    static func v2Dir(of b: TestBundle) throws -> String {
        let pid = try #require(try b.state()?["pid"] as? Int)
        let lines = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8).split(separator: "\n")
        let line = try #require(lines.first { $0.hasPrefix("0::") })
        return unified + line.dropFirst(3)
    }

    /// Where srunc puts a container without cgroupsPath: below the caller's own v2 cgroup.
    static func defaultPath(_ id: String) throws -> String {
        let own = try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8).split(separator: "\n")
            .first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) } ?? "/"
        return (own == "/" ? "" : own) + "/" + id
    }

    /// Ids of the device programs attached to a cgroup, as bpftool lists them.
    static func devicePrograms(_ dir: String) throws -> [String] {
        let r = try execute("/usr/sbin/bpftool", ["cgroup", "show", dir])
        #expect(r.code == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").filter { $0.contains("cgroup_device") }.map { String($0.split(separator: " ")[0]) }
    }

    static func withMknod(_ spec: inout Spec) {
        for keyPath in [\OCI.Capabilities.bounding, \OCI.Capabilities.effective, \OCI.Capabilities.permitted] {
            spec.process!.capabilities![keyPath: keyPath]!.append("CAP_MKNOD")
        }
    }

    /// Each line: what one open gave, "ok" or the shell's error text.
    static let probe = """
        mknod /dev/sdx b 8 0; mknod /dev/kmsg c 1 11
        head -c1 /dev/zero >/dev/null 2>&1 && echo zero=ok || echo zero=denied
        echo x >/dev/null 2>&1 && echo null=ok || echo null=denied
        head -c1 /dev/sdx 2>&1 | grep -q 'not permitted' && echo sdx=denied || echo sdx=allowed
        (echo srunc-test >/dev/kmsg) 2>&1 | grep -q 'not permitted' && echo kmsg=denied || echo kmsg=ok
        """

    @Test("only /dev/null and /dev/zero: other nodes are denied, update widens the list",
          arguments: [RuntimeUnderTest.sruncV2, .srunc, .runc])
    func deviceRules(_ rt: RuntimeUnderTest) async throws {
        let b = try TestBundle(rt) {
            shell("sleep 1000")(&$0)
            CgroupV2Tests.withMknod(&$0)
            $0.linux!.resources = Resources()
            $0.linux!.resources!.devices = [DeviceRule(allow: false, access: "rwm"),
                                             DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),
                                             DeviceRule(allow: true, type: "c", major: 1, minor: 5, access: "rwm")]
        }
        defer { b.cleanup() }
        let run = try b.runtimeCommand(["run", "--detach", b.id])
        try #require(run.code == 0, "\(run.stderr)")
        var programs: [String] = []
        if rt.name == "srunc-v2" {
            programs = try Self.devicePrograms(try Self.v2Dir(of: b))
            #expect(programs.count == 1)
        }
        let before = try b.runtimeCommand(["exec", b.id, "sh", "-c", Self.probe])
        #expect(before.stdout == "zero=ok\nnull=ok\nsdx=denied\nkmsg=denied\n", "\(before.stderr)")
        // runc 1.1's update takes no device rules; srunc's appends them, as v1's devices.allow does.
        guard rt.name != "runc" else { return }
        let widen = b.dir + "/widen.json"
        try #"{"devices":[{"allow":true,"type":"c","major":1,"minor":11,"access":"w"}]}"#.write(toFile: widen, atomically: true, encoding: .utf8)
        let update = try b.runtimeCommand(["update", "-r", widen, b.id])
        #expect(update.code == 0, "\(update.stderr)")
        let after = try b.runtimeCommand(["exec", b.id, "sh", "-c", Self.probe])
        #expect(after.stdout == "zero=ok\nnull=ok\nsdx=denied\nkmsg=ok\n", "\(after.stderr)")
        guard rt.name == "srunc-v2" else { return }
        let dir = try Self.v2Dir(of: b)
        let replaced = try Self.devicePrograms(dir)
        #expect(replaced.count == 1 && replaced != programs, "\(programs) -> \(replaced)")
        #expect(try b.runtimeCommand(["delete", "--force", b.id]).code == 0)
        #expect(!FileManager.default.fileExists(atPath: dir))
        // Detached and its last fd closed, the program is freed (after an RCU grace period).
        for id in programs + replaced {
            try eventually("program \(id) freed") { try execute("/usr/sbin/bpftool", ["prog", "show", "id", id]).code != 0 }
        }
    }

    @Test("the init is born in its cgroup: clone3 into it, no cgroup.procs write")
    func bornInCgroup() throws {
        let b = try TestBundle(.sruncV2, shell("grep '^0::' /proc/self/cgroup"))
        defer { b.cleanup() }
        let trace = b.dir + "/strace.txt"
        let r = try execute("/usr/bin/strace", ["-f", "-o", trace, "-e", "trace=openat,write,clone,clone3",
                                                 RuntimeUnderTest.srunc.binary, "--root", b.stateRoot, "run", b.id],
                            cwd: b.dir, env: RuntimeUnderTest.sruncV2.env)
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout == "0::\(try Self.defaultPath(b.id))\n")
        let calls = try String(contentsOfFile: trace, encoding: .utf8)
        #expect(calls.contains("CLONE_INTO_CGROUP"))
        #expect(!calls.contains("cgroup.procs"), "a cgroup.procs write on the start path")
    }

    @Test("v2: limits of controllers the tree lacks are refused, present ones written, nothing left")
    func controllers() throws {
        let available = (try? String(contentsOfFile: Self.unified + "/cgroup.controllers", encoding: .utf8)) ?? ""
        let refused = try TestBundle(.sruncV2) {
            $0.linux!.resources = Resources()
            $0.linux!.resources!.memory = Memory(limit: 64 << 20)
        }
        defer { refused.cleanup() }
        if !available.contains("memory") {
            let r = try refused.run()
            #expect(r.code != 0)
            #expect(r.stderr.contains("controllers not available") && r.stderr.contains("memory"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: Self.unified + (try Self.defaultPath(refused.id))))
            #expect(!FileManager.default.fileExists(atPath: refused.stateRoot + "/" + refused.id))
        }
        guard available.contains("hugetlb") else { return }
        let b = try TestBundle(.sruncV2) {
            shell("sleep 1000")(&$0)
            $0.linux!.resources = Resources()
            $0.linux!.resources!.hugepageLimits = [HugepageLimit(pageSize: "2MB", limit: 4 << 20)]
        }
        defer { b.cleanup() }
        try #require(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        let dir = try Self.v2Dir(of: b)
        #expect(try String(contentsOfFile: dir + "/hugetlb.2MB.max", encoding: .utf8) == "\(4 << 20)\n")
    }

    @Test("v2: pause freezes through cgroup.freeze; exec --cgroup enters a sub-cgroup; delete removes both")
    func freezeAndSubCgroups() throws {
        let b = try TestBundle(.sruncV2, shell("sleep 1000"))
        defer { b.cleanup() }
        try #require(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        let dir = try Self.v2Dir(of: b)
        #expect(try b.runtimeCommand(["pause", b.id]).code == 0)
        #expect(try b.state()?["status"] as? String == "paused")
        #expect(try String(contentsOfFile: dir + "/cgroup.freeze", encoding: .utf8) == "1\n")
        #expect(try b.runtimeCommand(["resume", b.id]).code == 0)
        #expect(try b.state()?["status"] as? String == "running")
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: false)
        let inSub = try b.runtimeCommand(["exec", "--cgroup", "sub", b.id, "grep", "^0::", "/proc/self/cgroup"])
        #expect(inSub.stdout == "0::\(try Self.defaultPath(b.id))/sub\n", "\(inSub.stderr)")
        #expect(try b.runtimeCommand(["delete", "--force", b.id]).code == 0)
        #expect(!FileManager.default.fileExists(atPath: dir))
    }
}
