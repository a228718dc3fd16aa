import Foundation
import OCI
import Testing

/// An unprivileged user the tests make once per machine (with the /etc/subuid and /etc/subgid
/// ranges useradd gives), and how to run a program as that user.
enum RootlessUser {
    static let name = "srunc-rootless"

    /// (uid, gid, first subordinate id), the user made first if missing.
    static let ids: (uid: UInt32, gid: UInt32, subStart: UInt32) = {
        if getpwnam(name) == nil {
            let r = try! execute("/usr/sbin/useradd", ["--create-home", "--shell", "/bin/sh", name])
            precondition(r.code == 0 || getpwnam(name) != nil, "useradd: \(r.stderr)")
        }
        let pw = getpwnam(name)!.pointee
        var sub = subordinateStart("/etc/subuid")
        if sub == nil {
            _ = try! execute("/usr/sbin/usermod", ["--add-subuids", "200000-265535", "--add-subgids", "200000-265535", name])
            sub = subordinateStart("/etc/subuid")
        }
        return (pw.pw_uid, pw.pw_gid, sub!)
    }()

    static func subordinateStart(_ file: String) -> UInt32? {
        let lines = ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n")
        return lines.first { $0.hasPrefix(name + ":") }.flatMap { UInt32($0.split(separator: ":")[1]) }
    }

    /// A directory owned by the user (mode 0700 when `private`).
    static func makeDirectory(_ path: String, private isPrivate: Bool = false) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        #expect(chown(path, ids.uid, ids.gid) == 0)
        if isPrivate { chmod(path, 0o700) }
    }

    /// Runs `program args` as the user, with its own HOME, USER and XDG_RUNTIME_DIR.
    static func run(_ program: String, _ args: [String], cwd: String, runtimeDir: String, env: [String: String] = [:]) throws -> Outcome {
        let user = ["HOME": "/home/" + name, "USER": name, "LOGNAME": name, "XDG_RUNTIME_DIR": runtimeDir]
        return try execute("/usr/bin/setpriv", ["--reuid=\(ids.uid)", "--regid=\(ids.gid)", "--init-groups", program] + args,
                           cwd: cwd, env: user.merging(env) { $1 })
    }
}

/// srunc without root: `spec --rootless`, a user namespace mapping the user (and its subuid
/// range through newuidmap), state under $XDG_RUNTIME_DIR, no cgroups it may not write; and
/// rootless podman driving srunc.
@Suite("rootless") struct RootlessTests {
    /// A bundle, runtime dir and srunc copy owned by the user, in one temporary directory.
    final class Setup {
        let dir = NSTemporaryDirectory() + "srunc-rootless-\(UUID().uuidString.prefix(8).lowercased())"
        var bundle: String { dir + "/bundle" }
        var runtimeDir: String { dir + "/run" }
        var srunc: String { dir + "/srunc" }
        let id = "rl-\(UUID().uuidString.prefix(8).lowercased())"

        init() throws {
            _ = RootlessUser.ids
            try RootlessUser.makeDirectory(dir)
            try RootlessUser.makeDirectory(runtimeDir, private: true)
            try RootlessUser.makeDirectory(bundle)
            // The user's own copy: the build tree's directories need not be open to others.
            try FileManager.default.copyItem(atPath: RuntimeUnderTest.srunc.binary, toPath: srunc)
            let cp = try execute("/bin/cp", ["-a", Fixtures.rootfs, bundle + "/rootfs"])
            try #require(cp.code == 0, "\(cp.stderr)")
            #expect(try execute("/bin/chown", ["-R", "\(RootlessUser.ids.uid):\(RootlessUser.ids.gid)", dir]).code == 0)
        }

        func srunc(_ args: [String]) throws -> Outcome {
            try RootlessUser.run(srunc, args, cwd: bundle, runtimeDir: runtimeDir)
        }

        /// `srunc spec --rootless` as the user, then `change` applied to what it wrote.
        func spec(_ change: (inout Spec) -> Void) throws {
            let r = try srunc(["spec", "--rootless"])
            try #require(r.code == 0, "\(r.stderr)")
            let path = bundle + "/config.json"
            var spec = try JSONDecoder().decode(Spec.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            spec.process!.terminal = false
            change(&spec)
            try JSONEncoder().encode(spec).write(to: URL(fileURLWithPath: path))
        }

        func cleanup() {
            _ = try? srunc(["delete", "--force", id])
            let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
            #expect(!mounts.contains(dir), "mounts left behind under \(dir)")
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    @Test("spec --rootless && run as a user: root inside, the user's files on a bind mount, state in XDG_RUNTIME_DIR")
    func specAndRun() throws {
        let s = try Setup()
        defer { s.cleanup() }
        let data = s.dir + "/data"
        try RootlessUser.makeDirectory(data)
        try s.spec {
            $0.process!.args = ["sh", "-c", "id -u; touch /data/made"]
            $0.mounts!.append(Mount(destination: "/data", type: "bind", source: data, options: ["rbind"]))
        }
        let written = try JSONDecoder().decode(Spec.self, from: Data(contentsOf: URL(fileURLWithPath: s.bundle + "/config.json")))
        #expect(written.linux?.uidMappings == [IDMapping(containerID: 0, hostID: RootlessUser.ids.uid, size: 1)])
        #expect(written.linux?.namespaces?.contains { $0.type == "network" } == false)
        #expect(written.linux?.resources == nil)
        let r = try s.srunc(["run", s.id])
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout == "0\n")
        let attrs = try FileManager.default.attributesOfItem(atPath: data + "/made")
        #expect(attrs[.ownerAccountID] as? Int == Int(RootlessUser.ids.uid))
        #expect(attrs[.groupOwnerAccountID] as? Int == Int(RootlessUser.ids.gid))
        #expect(FileManager.default.fileExists(atPath: s.runtimeDir + "/srunc"))
        #expect(try s.srunc(["list", "-q"]).stdout.isEmpty)
    }

    @Test("a subordinate id range through newuidmap, with exec and delete")
    func subordinateRange() throws {
        let s = try Setup()
        defer { s.cleanup() }
        let ids = RootlessUser.ids
        try s.spec {
            $0.process!.args = ["sleep", "1000"]
            $0.linux!.uidMappings = [IDMapping(containerID: 0, hostID: ids.uid, size: 1), IDMapping(containerID: 1, hostID: ids.subStart, size: 65536)]
            $0.linux!.gidMappings = [IDMapping(containerID: 0, hostID: ids.gid, size: 1), IDMapping(containerID: 1, hostID: ids.subStart, size: 65536)]
        }
        let run = try s.srunc(["run", "--detach", s.id])
        try #require(run.code == 0, "\(run.stderr)")
        let map = try s.srunc(["exec", s.id, "cat", "/proc/self/uid_map"])
        let rows = map.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(rows == ["0 \(ids.uid) 1", "1 \(ids.subStart) 65536"], "\(map.stderr)")
        #expect(try s.srunc(["delete", "--force", s.id]).code == 0)
        #expect(try s.srunc(["list", "-q"]).stdout.isEmpty)
    }

    @Test("limits without a delegated cgroup are refused, and nothing is left")
    func limitsNeedDelegation() throws {
        let s = try Setup()
        defer { s.cleanup() }
        try s.spec {
            $0.linux!.resources = Resources()
            $0.linux!.resources!.pids = Pids(limit: 10)
        }
        let r = try s.srunc(["run", s.id])
        #expect(r.code != 0)
        #expect(r.stderr.contains("rootless") && r.stderr.contains("delegated"), "\(r.stderr)")
        #expect(try s.srunc(["list", "-q"]).stdout.isEmpty)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: s.runtimeDir + "/srunc")) ?? [] == [])
    }

    @Test("rootless podman runs busybox through srunc")
    func podmanRootless() throws {
        let s = try Setup()
        defer {
            // podman's pause process holds its user namespace: this test's podman started it.
            if let text = try? String(contentsOfFile: s.dir + "/tmp/pause.pid", encoding: .utf8), let pid = pid_t(text) { kill(pid, SIGKILL) }
            s.cleanup()
        }
        let config = try String(contentsOfFile: RuntimeUnderTest.packageRoot + "/spec-fixtures/podman-containers.conf", encoding: .utf8)
            .replacingOccurrences(of: "@DIR@", with: s.dir)
        try config.write(toFile: s.dir + "/containers.conf", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: ImageFixture.archive, toPath: s.dir + "/image.tar")
        try RootlessUser.makeDirectory(s.dir + "/tmp")
        #expect(try execute("/bin/chown", ["\(RootlessUser.ids.uid)", s.dir + "/image.tar", s.dir + "/containers.conf"]).code == 0)
        func podman(_ args: [String]) throws -> Outcome {
            try RootlessUser.run("/usr/bin/podman", ["--root", s.dir + "/storage", "--runroot", s.dir + "/runroot",
                                                     "--storage-driver", "overlay", "--runtime", s.srunc] + args,
                                 cwd: s.dir, runtimeDir: s.runtimeDir, env: ["CONTAINERS_CONF": s.dir + "/containers.conf"])
        }
        let load = try podman(["load", "-i", s.dir + "/image.tar"])
        try #require(load.code == 0, "\(load.stderr)")
        let r = try podman(["run", "--rm", "--network", "none", ImageFixture.reference, "sh", "-c", "id -u; head -1 /proc/self/uid_map"])
        #expect(r.code == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(lines == ["0", "0 \(RootlessUser.ids.uid) 1"], "\(r.stdout)")
        #expect(try podman(["ps", "-aq"]).stdout.isEmpty)
    }
}
