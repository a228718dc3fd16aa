import Foundation
import OCI
import Testing

/// Every bad input gets a clear error, a non-zero exit, and leaves nothing behind: no state
/// directory, no mount (checked by cleanup) and no process.
@Suite("bad input") struct BadInputTests {
    let srunc = RuntimeUnderTest.srunc

    /// Pids of processes whose root directory lies inside `dir`: a leaked container init.
    func processesRooted(in dir: String) -> [String] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.filter { Int($0) != nil }.filter {
            ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\($0)/root")) ?? "").hasPrefix(dir)
        }
    }

    func expectFailure(_ b: TestBundle, _ args: [String], mentions: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try b.runtimeCommand(args)
        #expect(r.code != 0, "expected failure", sourceLocation: sourceLocation)
        for m in mentions {
            #expect(r.stderr.contains(m), "stderr \"\(r.stderr)\" does not mention \(m)", sourceLocation: sourceLocation)
        }
        let left = (try? FileManager.default.contentsOfDirectory(atPath: b.stateRoot)) ?? []
        #expect(!left.contains(b.id), "state directory left behind", sourceLocation: sourceLocation)
        #expect(processesRooted(in: b.dir).isEmpty, "container process left behind", sourceLocation: sourceLocation)
    }

    @Test func missingConfig() throws {
        let b = try TestBundle(srunc)
        defer { b.cleanup() }
        try FileManager.default.removeItem(atPath: b.dir + "/config.json")
        try expectFailure(b, ["run", b.id], mentions: ["config.json"])
    }

    @Test func malformedConfig() throws {
        let b = try TestBundle(srunc)
        defer { b.cleanup() }
        try "{\"ociVersion\": \"1.2.0\", ".write(toFile: b.dir + "/config.json", atomically: true, encoding: .utf8)
        try expectFailure(b, ["create", b.id], mentions: ["config.json", "invalid JSON"])
    }

    @Test func wrongFieldType() throws {
        let b = try TestBundle(srunc)
        defer { b.cleanup() }
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: b.dir + "/config.json"))) as! [String: Any]
        var process = json["process"] as! [String: Any]
        process["args"] = "sh -c true"
        json["process"] = process
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: b.dir + "/config.json"))
        try expectFailure(b, ["run", b.id], mentions: ["process.args"])
    }

    @Test func missingField() throws {
        let b = try TestBundle(srunc)
        defer { b.cleanup() }
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: b.dir + "/config.json"))) as! [String: Any]
        var process = json["process"] as! [String: Any]
        process.removeValue(forKey: "cwd")
        json["process"] = process
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: b.dir + "/config.json"))
        try expectFailure(b, ["run", b.id], mentions: ["process.cwd"])
    }

    @Test func emptyArgs() throws {
        let b = try TestBundle(srunc) { $0.process!.args = [] }
        defer { b.cleanup() }
        try expectFailure(b, ["run", b.id], mentions: ["process.args"])
    }

    @Test func unknownCapability() throws {
        let b = try TestBundle(srunc) { $0.process!.capabilities!.bounding!.append("CAP_MAKE_COFFEE") }
        defer { b.cleanup() }
        try expectFailure(b, ["run", b.id], mentions: ["CAP_MAKE_COFFEE", "process.capabilities.bounding"])
    }

    @Test func missingRootfs() throws {
        let b = try TestBundle(srunc) { $0.root = Root(path: "no-such-rootfs") }
        defer { b.cleanup() }
        try expectFailure(b, ["run", b.id], mentions: ["rootfs", "no-such-rootfs"])
    }

    @Test func missingExecutable() throws {
        let b = try TestBundle(srunc) { $0.process!.args = ["/bin/not-there"] }
        defer { b.cleanup() }
        try expectFailure(b, ["run", b.id], mentions: ["/bin/not-there"])
    }

    @Test func hardLimitAboveOwn() throws {
        // Root here lacks CAP_SYS_RESOURCE beyond its own hard limit on some hosts; a limit far
        // above nr_open fails everywhere.
        let b = try TestBundle(srunc) { $0.process!.rlimits = [Rlimit(type: "RLIMIT_NOFILE", hard: 1 << 40, soft: 1 << 40)] }
        defer { b.cleanup() }
        try expectFailure(b, ["run", b.id], mentions: ["RLIMIT_NOFILE"])
    }

    @Test func unknownContainer() throws {
        let b = try TestBundle(srunc)
        defer { b.cleanup() }
        for verb in [["state"], ["start"], ["kill"], ["delete"]] {
            try expectFailure(b, verb + ["no-such-container"], mentions: ["does not exist"])
        }
        try expectFailure(b, ["state", "../escape"], mentions: ["invalid container id"])
    }

    @Test func duplicateID() throws {
        let b = try TestBundle(srunc, shell("sleep 100"))
        defer { b.cleanup() }
        #expect(try b.runtimeCommand(["create", b.id]).code == 0)
        let pid = try #require(try b.state()?["pid"] as? Int)
        let again = try b.runtimeCommand(["create", b.id])
        #expect(again.code != 0)
        #expect(again.stderr.contains("exists"))
        // The first container is untouched by the failed second create.
        #expect(try b.state()?["pid"] as? Int == pid)
        #expect(try b.state()?["status"] as? String == "created")
    }

    @Test func badSignal() throws {
        let b = try TestBundle(srunc, shell("sleep 100"))
        defer { b.cleanup() }
        #expect(try b.runtimeCommand(["create", b.id]).code == 0)
        for sig in ["SIGFOO", "99", "-3"] {
            let r = try b.runtimeCommand(["kill", b.id, sig])
            #expect(r.code != 0)
            #expect(r.stderr.contains("signal") || r.stderr.contains("flag"), "\(sig): \(r.stderr)")
        }
        #expect(try b.state()?["status"] as? String == "created")
    }

    @Test func consoleSocketWithoutTerminal() throws {
        let b = try TestBundle(srunc)
        defer { b.cleanup() }
        try expectFailure(b, ["create", "--console-socket", b.dir + "/nope.sock", b.id], mentions: ["console socket"])
        b.spec.process!.terminal = true
        try b.writeConfig()
        try expectFailure(b, ["create", b.id], mentions: ["console socket"])
        try expectFailure(b, ["create", "--console-socket", b.dir + "/nope.sock", b.id], mentions: ["nope.sock"])
    }

    /// A symlink in the image pointing at a host directory must not carry a mount out of the rootfs.
    @Test(arguments: ["absolute", "relative"])
    func mountTargetEscape(_ kind: String) throws {
        let host = NSTemporaryDirectory() + "srunc-escape-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: host) }
        let b = try TestBundle(srunc) {
            shell("echo inside > /evil/sub/marker && ls /evil/sub")(&$0)
            $0.mounts!.append(OCI.Mount(destination: "/evil/sub", type: "tmpfs", source: "tmpfs", options: ["mode=755"]))
        }
        defer { b.cleanup() }
        let target = kind == "absolute" ? host : String(repeating: "../", count: 12) + host.dropFirst()
        try FileManager.default.createSymbolicLink(atPath: b.rootfs + "/evil", withDestinationPath: target)
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout == "marker\n")
        // The host directory saw nothing: the mount point was made inside the container's tree.
        #expect(try FileManager.default.contentsOfDirectory(atPath: host).isEmpty)
    }
}
