import Foundation
import OCI
import Testing

/// Attacks from inside a container on the runtime itself.
@Suite("hardening") struct HardeningTests {
    /// A created container's init is still a copy of the runtime binary. A second container
    /// sharing its pid namespace tries to read and overwrite it through /proc/1/exe
    /// (CVE-2019-5736) and to reach its fds and cwd (CVE-2024-21626): every attempt must fail.
    /// Two defences stand in the way: the init keeps its full capabilities until after `start`
    /// (so a less privileged process fails ptrace's capability-subset check), and it is
    /// non-dumpable until exec (which also stops a process holding every capability but
    /// CAP_SYS_PTRACE).
    @Test("the runtime's exe and fds are out of reach before exec", arguments: RuntimeUnderTest.all)
    func procExe(_ rt: RuntimeUnderTest) throws {
        let victim = try TestBundle(rt, shell("sleep 100"))
        defer { victim.cleanup() }
        #expect(try victim.runtimeCommand(["create", victim.id]).code == 0)
        let pid = try #require(try victim.state()?["pid"] as? Int)
        let attacker = try TestBundle(rt) {
            shell("""
                head -c 4 /proc/1/exe >/dev/null 2>&1 && echo read-exe || echo no-read-exe
                echo x >> /proc/1/exe 2>/dev/null && echo wrote-exe || echo no-write-exe
                readlink /proc/1/fd/* >/dev/null 2>&1 && echo saw-fds || echo no-fds
                ls /proc/1/cwd/ >/dev/null 2>&1 && echo saw-cwd || echo no-cwd
                """)(&$0)
            $0.linux!.namespaces = $0.linux!.namespaces!.map { $0.type == "pid" ? Namespace(type: "pid", path: "/proc/\(pid)/ns/pid") : $0 }
        }
        defer { attacker.cleanup() }
        let r = try attacker.run()
        #expect(r.code == 0, "\(r.stderr)")
        if rt.name == "srunc" {
            #expect(r.stdout == "no-read-exe\nno-write-exe\nno-fds\nno-cwd\n")
        } else {
            // runc's init runs from a memfd copy of runc: reading it is harmless; writing must fail.
            #expect(r.stdout.contains("no-write-exe"))
        }
        let runtime = try Data(contentsOf: URL(fileURLWithPath: rt.binary))
        #expect(runtime.suffix(2) != Data("x\n".utf8))
    }

    /// CVE-2024-21626: process.cwd pointing at an fd the runtime leaked (a host directory) would
    /// start the process outside the rootfs. No runtime fd may be a directory at that moment.
    @Test("process.cwd through /proc/self/fd never lands on the host", arguments: RuntimeUnderTest.all)
    func cwdThroughLeakedFD(_ rt: RuntimeUnderTest) throws {
        for n in 3...9 {
            let b = try TestBundle(rt) {
                shell("pwd; ls")(&$0)
                $0.process!.cwd = "/proc/self/fd/\(n)"
            }
            defer { b.cleanup() }
            let r = try b.run()
            #expect(r.code != 0, "cwd /proc/self/fd/\(n) started a process: \(r.stdout)")
            #expect(r.stdout.isEmpty)
        }
    }
}
