import API
import CLinux
import Foundation
import Testing

/// The daemon when a component dies or a client repeats itself: a killed shim, many imports,
/// a descriptor that lies about a blob the store already has.
@Suite("scontainerd reliability")
struct ReliabilityTests {
    @Test func aKilledShimIsNoticedAndItsContainerEnds() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        #expect(try d.run(["-d", "--name", "orphan"], "test/layered:oci", ["sh", "-c", "echo before; sleep 1000"]).code == 0)
        let info = try d.inspect("orphan")
        let initPid = pid_t(info["pid"] as? Int ?? 0)
        let shimPid = try Self.parent(of: initPid)
        try eventually("the first line is logged") { try d.sctr(["logs", "orphan"]).stdout == "before\n" }
        kill(shimPid, SIGKILL)
        try eventually("the lost container is reported exited") { try d.inspect("orphan")["status"] as? String == "exited" }
        let lost = try d.inspect("orphan")
        #expect(lost["exitCode"] as? Int == 255 && (lost["error"] as? String)?.contains("shim died") == true, "\(lost)")
        try eventually("the container's init is gone") { kill(initPid, 0) != 0 }
        // stop, wait, logs and rm behave as for any exited container.
        #expect(try d.sctr(["stop", "-t", "2", "orphan"]).code == 0)
        #expect(try d.sctr(["wait", "orphan"]).stdout == "255\n")
        #expect(try d.sctr(["logs", "orphan"]).stdout == "before\n")
        #expect(try d.sctr(["rm", "orphan"]).code == 0)
        #expect(try d.containers().isEmpty)
    }

    @Test func importsLeakNoDescriptors() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        func openFDs() throws -> Int { try FileManager.default.contentsOfDirectory(atPath: "/proc/\(d.pid)/fd").count }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let before = try openFDs()
        for _ in 0..<40 { #expect(try d.importImage("layered-oci.tar").code == 0) }
        // Each client's connection closes a moment after the client has gone: wait for it.
        try eventually("the daemon's fds back to \(before), not one more per import") { try openFDs() <= before }
    }

    @Test func aDescriptorThatLiesAboutAStoredBlobsSizeIsRefused() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let lie = try d.importImage("size-lie.tar")
        #expect(lie.code == 1 && lie.stderr.contains("size mismatch"), "\(lie)")
        #expect(try d.sctr(["images", "-q"]).stdout.split(separator: "\n").count == 1)
    }

    @Test func checkFindsTheStoreConsistentAndNamesACorruptBlob() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        #expect(try d.run(["-d", "--name", "keeper"], "test/layered:oci", ["sleep", "1000"]).code == 0)
        let check = DaemonInstance.binDir + "/scontainerd"
        let refused = try execute(check, ["check", d.dir + "/root"])
        #expect(refused.code != 0 && refused.stderr.contains("another scontainerd"), "the daemon holds the root: \(refused)")
        d.terminate()
        let clean = try execute(check, ["check", d.dir + "/root"])
        #expect(clean.code == 0 && clean.stdout.hasSuffix("consistent\n"), "\(clean)")
        let blobs = d.dir + "/root/content/blobs/sha256"
        let victim = try #require(try FileManager.default.contentsOfDirectory(atPath: blobs).first)
        let handle = try #require(FileHandle(forUpdatingAtPath: blobs + "/" + victim))
        handle.write(Data("corrupt".utf8))
        try handle.close()
        let corrupt = try execute(check, ["check", d.dir + "/root"])
        #expect(corrupt.code == 1 && corrupt.stdout.contains("blob \(victim): its bytes do not hash to its name"), "\(corrupt)")
        try d.start()
    }

    /// A process's parent pid, from /proc.
    static func parent(of pid: pid_t) throws -> pid_t {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        guard let close = stat.lastIndex(of: ")") else { throw ClientError("no stat for \(pid)") }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return pid_t(fields[1]) ?? 0
    }
}
