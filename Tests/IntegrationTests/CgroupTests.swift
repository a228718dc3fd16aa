import Foundation
import OCI
import Testing

/// Resource control asserted by its effect on real processes, through srunc and runc.
@Suite("cgroups") struct CgroupTests {
    /// The container process's cgroup directory in one v1 hierarchy, as the host sees it.
    func hostCgroupDir(pid: Int, controller: String) throws -> String {
        let lines = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8).split(separator: "\n")
        let line = try #require(lines.first { $0.split(separator: ":")[1].split(separator: ",").contains(Substring(controller)) })
        return "/sys/fs/cgroup/\(controller)" + line.split(separator: ":", maxSplits: 2)[2]
    }

    @Test("every hierarchy bound under /sys/fs/cgroup carries the mount's flags and is read-only", arguments: RuntimeUnderTest.all)
    func cgroupMountFlags(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            shell("grep ' - cgroup ' /proc/self/mountinfo | cut -d' ' -f5,6; touch /sys/fs/cgroup/memory/x 2>/dev/null; echo touch=$?")(&$0)
            $0.mounts = ($0.mounts ?? []).filter { $0.destination != "/sys/fs/cgroup" }
                + [Mount(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"])]
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").dropLast()
        #expect(lines.count >= 8, "one line per v1 hierarchy: \(r.stdout)")
        for line in lines {
            let flags = Set(line.split(separator: " ").last?.split(separator: ",") ?? [])
            #expect(flags.isSuperset(of: ["ro", "nosuid", "nodev", "noexec", "relatime"]), "\(line)")
        }
        #expect(r.stdout.hasSuffix("touch=1\n"))
    }

    @Test("a process over its memory limit is OOM-killed", arguments: RuntimeUnderTest.all)
    func memoryLimit(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            // awk doubles a string until the 32 MiB limit stops it.
            shell("awk 'BEGIN { s = \"x\"; while (1) s = s s }'; echo awk=$?")(&$0)
            $0.linux!.resources = Resources()
            $0.linux!.resources!.memory = Memory(limit: 32 << 20, swap: 32 << 20)
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout == "awk=137\n")
    }

    @Test("a fork bomb stops at the pids limit", arguments: RuntimeUnderTest.all)
    func pidsLimit(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            // The bomb runs in a subshell (ash gives up a script whose fork fails); the count uses
            // only builtins, since no fork is left once the limit is reached.
            shell("(for i in $(seq 40); do sleep 30 & done) 2>/dev/null; set -- /proc/[0-9]*; echo $#")(&$0)
            $0.linux!.resources = Resources()
            $0.linux!.resources!.pids = Pids(limit: 10)
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        // sh and the sleeps that got a pid: never more than the limit, and the limit was reached.
        let count = Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 99
        #expect(count <= 10 && count >= 5, "\(r.stdout)")
    }

    @Test("cpu quota, shares and the cgroup path are the container's own", arguments: RuntimeUnderTest.all)
    func cpuQuotaAndPath(_ rt: RuntimeUnderTest) throws {
        let cgroupPath = "/srunc-test/\(rt.name)-\(UUID().uuidString.prefix(8))"
        let b = try TestBundle(rt) {
            shell("sleep 100")(&$0)
            $0.linux!.cgroupsPath = cgroupPath
            $0.linux!.resources = Resources()
            $0.linux!.resources!.cpu = CPU(shares: 256, quota: 25000, period: 100000)
        }
        defer {
            b.cleanup()
            for c in ["cpu", "memory", "pids", "freezer", "blkio", "devices", "cpuset", "cpuacct", "systemd", "unified"] {
                rmdir("/sys/fs/cgroup/\(c)/srunc-test")
            }
        }
        #expect(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        let pid = try #require(try b.state()?["pid"] as? Int)
        let dir = try hostCgroupDir(pid: pid, controller: "cpu")
        #expect(dir == "/sys/fs/cgroup/cpu" + cgroupPath)
        #expect(try String(contentsOfFile: dir + "/cpu.cfs_quota_us", encoding: .utf8) == "25000\n")
        #expect(try String(contentsOfFile: dir + "/cpu.shares", encoding: .utf8) == "256\n")
        #expect(try String(contentsOfFile: dir + "/cgroup.procs", encoding: .utf8).contains("\(pid)\n"))
        #expect(try b.runtimeCommand(["delete", "--force", b.id]).code == 0)
        #expect(!FileManager.default.fileExists(atPath: dir), "delete left the cgroup behind")
    }

    @Test("pause freezes every process, resume thaws them", arguments: RuntimeUnderTest.all)
    func pauseResume(_ rt: RuntimeUnderTest) async throws {
        let b = try TestBundle(rt, shell("sleep 100 & while true; do sleep 0.05; done"))
        defer { b.cleanup() }
        #expect(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        let pid = try #require(try b.state()?["pid"] as? Int)
        #expect(try b.runtimeCommand(["resume", b.id]).code != 0, "resume of a running container must fail")
        #expect(try b.runtimeCommand(["pause", b.id]).code == 0)
        #expect(try b.state()?["status"] as? String == "paused")
        let freezer = try hostCgroupDir(pid: pid, controller: "freezer")
        #expect(try String(contentsOfFile: freezer + "/freezer.state", encoding: .utf8) == "FROZEN\n")
        let procs = try String(contentsOfFile: freezer + "/cgroup.procs", encoding: .utf8).split(separator: "\n")
        #expect(procs.count >= 2)
        for p in procs {
            // A frozen task sleeps uninterruptibly in the freezer: state D.
            let stat = try String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8)
            #expect(stat.split(separator: ")").last?.split(separator: " ").first == "D", "\(stat)")
        }
        #expect(try b.runtimeCommand(["resume", b.id]).code == 0)
        #expect(try b.state()?["status"] as? String == "running")
        #expect(try String(contentsOfFile: freezer + "/freezer.state", encoding: .utf8) == "THAWED\n")
        #expect(try b.runtimeCommand(["delete", "--force", b.id]).code == 0)
        #expect(try await b.waitForStatus("") == "")
    }

    @Test("ps lists the container's processes; update changes live limits", arguments: RuntimeUnderTest.all)
    func psAndUpdate(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("sleep 100 & while true; do sleep 0.05; done"))
        defer { b.cleanup() }
        #expect(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        let pid = try #require(try b.state()?["pid"] as? Int)
        // The shell forks `sleep 100` after `run --detach` returns: under load, ps may come first.
        var json = Outcome(stdout: "", stderr: "", code: 0), pids: [Int] = []
        try eventually("ps lists the shell and its sleep: \(json.stdout)") {
            json = try b.runtimeCommand(["ps", "--format", "json", b.id])
            pids = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [Int] ?? []
            return pids.count >= 2
        }
        #expect(pids.contains(pid) && pids.count >= 2, "\(json.stdout)")
        let table = try b.runtimeCommand(["ps", b.id])
        #expect(table.stdout.hasPrefix("UID"))
        #expect(table.stdout.contains("sleep 100"))
        #expect(table.code == 0)
        #expect(try b.runtimeCommand(["update", "--pids-limit", "55", "--cpu-quota", "30000", "--memory", "48m", b.id]).code == 0)
        #expect(try String(contentsOfFile: hostCgroupDir(pid: pid, controller: "pids") + "/pids.max", encoding: .utf8) == "55\n")
        #expect(try String(contentsOfFile: hostCgroupDir(pid: pid, controller: "cpu") + "/cpu.cfs_quota_us", encoding: .utf8) == "30000\n")
        #expect(try String(contentsOfFile: hostCgroupDir(pid: pid, controller: "memory") + "/memory.limit_in_bytes", encoding: .utf8) == "\(48 << 20)\n")
        try #"{"pids": {"limit": 66}}"#.write(toFile: b.dir + "/r.json", atomically: true, encoding: .utf8)
        #expect(try b.runtimeCommand(["update", "-r", b.dir + "/r.json", b.id]).code == 0)
        #expect(try String(contentsOfFile: hostCgroupDir(pid: pid, controller: "pids") + "/pids.max", encoding: .utf8) == "66\n")
    }

    @Test("events --stats reports the cgroup's accounting", arguments: RuntimeUnderTest.all)
    func stats(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt) {
            shell("sleep 100")(&$0)
            $0.linux!.resources = Resources()
            $0.linux!.resources!.memory = Memory(limit: 32 << 20)
            $0.linux!.resources!.pids = Pids(limit: 20)
        }
        defer { b.cleanup() }
        #expect(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        let r = try b.runtimeCommand(["events", "--stats", b.id])
        #expect(r.code == 0, "\(r.stderr)")
        let event = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(event?["type"] as? String == "stats")
        #expect(event?["id"] as? String == b.id)
        let data = event?["data"] as? [String: Any]
        let memory = (data?["memory"] as? [String: Any])?["usage"] as? [String: Any]
        #expect(memory?["limit"] as? Int == 32 << 20)
        #expect((memory?["usage"] as? Int ?? 0) > 0)
        let pids = data?["pids"] as? [String: Any]
        #expect(pids?["limit"] as? Int == 20)
        // `sh -c "sleep 100"` may still be forking its one command: the shell, the sleep, or both.
        #expect((1...2).contains(pids?["current"] as? Int ?? 0), "\(String(describing: pids))")
        let cpu = (data?["cpu"] as? [String: Any])?["usage"] as? [String: Any]
        #expect((cpu?["total"] as? Int ?? 0) > 0)
    }
}
