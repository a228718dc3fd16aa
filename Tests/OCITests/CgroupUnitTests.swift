import Foundation
import OCI
@testable import Runtime
import Testing

/// The cgroup translations, checked as data and as files written into a temporary directory
/// laid out like a cgroup; CgroupV2Tests drive the same code against the real v2 hierarchy.
@Suite("cgroup units") struct CgroupUnitTests {
    func resources() -> Resources {
        var r = Resources()
        r.memory = Memory(limit: 64 << 20, reservation: 32 << 20, swap: 96 << 20, swappiness: 10)
        r.cpu = CPU(shares: 512, quota: 50000, period: 100000, cpus: "0", mems: "0")
        r.pids = Pids(limit: 42)
        r.unified = ["memory.high": "50000000"]
        return r
    }

    @Test func v1Translation() throws {
        var r = resources()
        #expect(throws: (any Error).self) { try ResourceWrites.v1(r) }  // unified is v2's
        r.unified = nil
        let w = try ResourceWrites.v1(r)
        func value(_ f: String) -> String? { w.last { $0.file == f }?.value }
        #expect(value("memory.limit_in_bytes") == String(64 << 20))
        #expect(value("memory.memsw.limit_in_bytes") == String(96 << 20))
        #expect(value("memory.soft_limit_in_bytes") == String(32 << 20))
        #expect(value("cpu.shares") == "512")
        #expect(w.firstIndex { $0.file == "cpu.cfs_period_us" }! < w.firstIndex { $0.file == "cpu.cfs_quota_us" }!)
        #expect(value("pids.max") == "42")
        #expect(w.first { $0.file == "cpuset.cpus" }?.controller == "cpuset")
    }

    @Test func v1DeviceRules() throws {
        var r = Resources()
        r.devices = [DeviceRule(allow: false, access: "rwm"), DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),
                     DeviceRule(allow: true, type: "c", major: 136, access: "rw")]
        let rules = try ResourceWrites.v1(r).map { "\($0.file)=\($0.value)" }
        #expect(Array(rules.prefix(5)) == [
            "devices.deny=a", "devices.allow=c 1:3 rwm", "devices.allow=c 136:* rw", "devices.allow=c *:* m", "devices.allow=b *:* m"])
        #expect(rules.contains("devices.allow=c 5:2 rwm") && rules.count == 3 + 12)
        #expect(try ResourceWrites.v1(Resources()).isEmpty)
    }

    @Test func v2Translation() throws {
        let w = try ResourceWrites.v2(resources())
        func value(_ f: String) -> String? { w.last { $0.file == f }?.value }
        #expect(value("memory.max") == String(64 << 20))
        #expect(value("memory.low") == String(32 << 20))
        #expect(value("memory.swap.max") == String(32 << 20))
        #expect(value("cpu.max") == "50000 100000")
        #expect(value("cpu.weight") == String(ResourceWrites.weight(fromShares: 512)))
        #expect(value("pids.max") == "42")
        #expect(value("memory.high") == "50000000")
        #expect(ResourceWrites.weight(fromShares: 2) == 1)
        #expect(ResourceWrites.weight(fromShares: 262144) == 10000)
        #expect(ResourceWrites.weight(fromShares: 1024) == 39)
    }

    @Test func v2RejectsBadUnifiedKeys() {
        var r = Resources()
        r.unified = ["../escape": "1"]
        #expect(throws: RuntimeError.self) { try ResourceWrites.v2(r) }
    }

    @Test func v2WritesIntoADirectory() throws {
        let dir = NSTemporaryDirectory() + "srunc-cg2-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for f in ["memory.max", "memory.low", "memory.swap.max", "memory.high", "cpu.max", "cpu.weight", "cpuset.cpus", "cpuset.mems", "pids.max"] {
            FileManager.default.createFile(atPath: dir + "/" + f, contents: nil)
        }
        let cg = Cgroup(layout: CgroupLayout(version: .v2, dirs: [.init(controllers: "", path: dir)]))
        try cg.apply(resources())
        #expect(try String(contentsOfFile: dir + "/cpu.max", encoding: .utf8) == "50000 100000")
        #expect(try String(contentsOfFile: dir + "/pids.max", encoding: .utf8) == "42")
        #expect(try String(contentsOfFile: dir + "/memory.swap.max", encoding: .utf8) == String(32 << 20))
        // A knob this "kernel" lacks is a clear error, not a silent skip.
        var r = Resources()
        r.hugepageLimits = [HugepageLimit(pageSize: "2MB", limit: 0)]
        #expect(throws: RuntimeError.self) { try cg.apply(r) }
    }

    @Test func systemdPaths() throws {
        #expect(try CgroupLayout.expandSlice("system.slice") == "/system.slice")
        #expect(try CgroupLayout.expandSlice("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice")
        #expect(try CgroupLayout.innerPath("machine.slice:srunc:abc", id: "x", systemd: true) == ("/machine.slice/srunc-abc.scope", true))
        #expect(try CgroupLayout.innerPath(nil, id: "x", systemd: false) == ("x", false))
        #expect(try CgroupLayout.innerPath("/a/b", id: "x", systemd: false) == ("/a/b", true))
        #expect(throws: RuntimeError.self) { try CgroupLayout.innerPath("/a/../../b", id: "x", systemd: false) }
        #expect(throws: RuntimeError.self) { try CgroupLayout.innerPath("bad", id: "x", systemd: true) }
    }
}
