import Foundation
import OCI
import Testing

/// Idmapped bind mounts and time namespaces (Debian's runc 1.1 has neither: srunc only).
@Suite("idmapped mounts and time namespaces") struct IdmapTimeTests {
    /// A host directory with a file owned by root and one by 1000, removed by the caller.
    static func ownedFiles() throws -> String {
        let dir = NSTemporaryDirectory() + "srunc-idmap-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        FileManager.default.createFile(atPath: dir + "/root-file", contents: nil)
        FileManager.default.createFile(atPath: dir + "/user-file", contents: nil)
        #expect(chown(dir + "/user-file", 1000, 1000) == 0)
        return dir
    }

    static func owners(_ path: String) throws -> String {
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        return "\(attrs[.ownerAccountID] as? Int ?? -1):\(attrs[.groupOwnerAccountID] as? Int ?? -1)"
    }

    @Test("an idmapped bind mount shows mapped owners inside, the host's are unchanged")
    func idmappedBind() throws {
        let data = try Self.ownedFiles()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let map = [IDMapping(containerID: 0, hostID: 5000, size: 2000)]
        let b = try TestBundle(.srunc) {
            shell("stat -c '%n %u:%g' /data/root-file /data/user-file")(&$0)
            var m = Mount(destination: "/data", type: "bind", source: data, options: ["bind"])
            m.uidMappings = map
            m.gidMappings = map
            $0.mounts!.append(m)
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout == "/data/root-file 5000:5000\n/data/user-file 6000:6000\n")
        #expect(try Self.owners(data + "/root-file") == "0:0")
        #expect(try Self.owners(data + "/user-file") == "1000:1000")
    }

    @Test("idmap without mappings takes the container's user namespace: its root owns host root's files")
    func idmapWithUserNamespace() throws {
        let data = try Self.ownedFiles()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let map = [IDMapping(containerID: 0, hostID: 100_000, size: 65536)]
        let b = try TestBundle(.srunc) {
            shell("stat -c %u /tmp/root-file; touch /tmp/made-inside && echo made")(&$0)
            $0.linux!.namespaces!.append(Namespace(type: "user"))
            $0.linux!.uidMappings = map
            $0.linux!.gidMappings = map
            $0.mounts!.append(Mount(destination: "/tmp", type: "bind", source: data, options: ["bind", "idmap"]))
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout == "0\nmade\n")
        // Written by the container's root through the mapping: root's on the host.
        #expect(try Self.owners(data + "/made-inside") == "0:0")
    }

    @Test("idmapped mount requests srunc cannot meet are refused, naming the mount")
    func idmapRefusals() throws {
        let cases: [(Mount, String)] = [
            (Mount(destination: "/data", type: "bind", source: "/tmp", options: ["bind", "idmap"]), "needs uidMappings"),
            (Mount(destination: "/data", type: "tmpfs", source: "tmpfs", options: ["idmap"]), "must be bind mounts"),
        ]
        for (mount, words) in cases {
            let b = try TestBundle(.srunc) { $0.mounts!.append(mount) }
            defer { b.cleanup() }
            let r = try b.run()
            #expect(r.code != 0)
            #expect(r.stderr.contains("/data") && r.stderr.contains(words), "\(r.stderr)")
            #expect(try b.runtimeCommand(["list", "-q"]).stdout.isEmpty)
        }
    }

    @Test("a time namespace offsets boottime and monotonic, for the init and for exec")
    func timeNamespace() throws {
        let day: Int64 = 86400
        let b = try TestBundle(.srunc) {
            shell("sleep 1000")(&$0)
            $0.linux!.namespaces!.append(Namespace(type: "time"))
            $0.linux!.timeOffsets = ["boottime": TimeOffset(secs: 1000 * day, nanosecs: 0), "monotonic": TimeOffset(secs: 500 * day)]
        }
        defer { b.cleanup() }
        try #require(try b.runtimeCommand(["run", "--detach", b.id]).code == 0)
        let hostUptime = try Double(#require(String(contentsOfFile: "/proc/uptime", encoding: .utf8).split(separator: " ").first))!
        let pid = try #require(try b.state()?["pid"] as? Int)
        let offsets = try String(contentsOfFile: "/proc/\(pid)/timens_offsets", encoding: .utf8)
        #expect(offsets.contains("monotonic    \(500 * day)") || offsets.contains("monotonic \(500 * day)"), "\(offsets)")
        let inside = try b.runtimeCommand(["exec", b.id, "cat", "/proc/uptime"])
        let uptime = try Double(#require(inside.stdout.split(separator: " ").first))!
        #expect(uptime >= Double(1000 * day) + hostUptime && uptime < Double(1001 * day) + hostUptime, "\(inside.stdout)")
    }

    @Test("time offsets without a time namespace, or for an unknown clock, are refused")
    func timeRefusals() throws {
        for (withNamespace, clock) in [(false, "boottime"), (true, "realtime")] {
            let b = try TestBundle(.srunc) {
                if withNamespace { $0.linux!.namespaces!.append(Namespace(type: "time")) }
                $0.linux!.timeOffsets = [clock: TimeOffset(secs: 10)]
            }
            defer { b.cleanup() }
            let r = try b.run()
            #expect(r.code != 0)
            #expect(r.stderr.contains("timeOffsets"), "\(r.stderr)")
        }
    }
}
