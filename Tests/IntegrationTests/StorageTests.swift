import Foundation
import Testing

/// The store's garbage collection and limits (issue 14): nothing outlives the images that
/// name it, and a layer that unpacks to too much is refused with nothing left.
@Suite("store")
struct StorageTests {
    /// Entries of a store directory, without the empty scratch and ingest areas.
    static func entries(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { name in
            guard name == ".scratch" else { return true }
            return !((try? FileManager.default.contentsOfDirectory(atPath: dir + "/" + name))?.isEmpty ?? true)
        }
    }

    @Test("after rmi of every image and system prune, no blob or snapshot is left")
    func pruneEmptiesTheStore() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        #expect(try d.importImage("base-oci.tar").code == 0)
        #expect(try d.run(["--name", "used"], "test/layered:oci", ["true"]).code == 0)
        let root = d.dir + "/root"
        #expect(!Self.entries(root + "/content/blobs/sha256").isEmpty && !Self.entries(root + "/snapshots").isEmpty)
        let refused = try d.sctr(["rmi", "test/layered:oci"])
        #expect(refused.code != 0, "a container still uses it")
        let pruned = try d.sctr(["system", "prune", "-f"])
        #expect(pruned.code == 0 && pruned.stdout.contains("Deleted Containers:"), "\(pruned)")
        #expect(try d.sctr(["rmi", "test/layered:oci", "test/base:1"]).code == 0)
        // rmi collects already; prune finds nothing more to do.
        #expect(Self.entries(root + "/content/blobs/sha256") == [] && Self.entries(root + "/snapshots") == [])
        #expect(try d.sctr(["system", "prune", "-f", "--all", "--volumes"]).code == 0)
        #expect(Self.entries(root + "/content/blobs/sha256") == [] && Self.entries(root + "/snapshots") == [])
        #expect(Self.entries(root + "/content/ingest") == [])
    }

    @Test("layers unpack in parallel, each entry resolved anew after a removal; a bad layer fails the whole unpack")
    func unpackerResolvesAfterRemovals() throws {
        let dir = NSTemporaryDirectory() + "unpack-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/out1", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/out2", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/out3", withIntermediateDirectories: true)
        // a/b/f1 is written, then `a` is replaced by a link to c: a/b/f2 must land in c/b, where
        // the path now leads, not in the removed a/b an unpacker might still hold open.
        let made = try execute("/usr/bin/python3", ["-c", """
            import io, sys, tarfile
            def layer(path, entries):
                with tarfile.open(path, "w") as t:
                    for name, kind, data in entries:
                        i = tarfile.TarInfo(name)
                        if kind == "dir": i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
                        elif kind == "link": i.type = tarfile.SYMTYPE; i.linkname = data; t.addfile(i)
                        else: i.size = len(data); i.mode = 0o644; t.addfile(i, io.BytesIO(data))
            d = sys.argv[1]
            layer(d + "/replace.tar", [("a", "dir", None), ("a/b", "dir", None), ("a/b/f1", "file", b"one"),
                                       ("c", "dir", None), ("c/b", "dir", None), ("a", "link", "c"), ("a/b/f2", "file", b"two")])
            layer(d + "/plain.tar", [("x", "dir", None), ("x/y", "file", b"y")])
            layer(d + "/escape.tar", [("up", "link", "../.."), ("up/z", "file", b"z")])
            """, dir])
        #expect(made.code == 0, "\(made)")
        let unpack = DaemonInstance.binDir + "/scontainerd"
        let ok = try execute(unpack, ["unpack-layer", dir + "/replace.tar", dir + "/out1", dir + "/plain.tar", dir + "/out2"])
        #expect(ok.code == 0, "\(ok)")
        #expect((try? String(contentsOfFile: dir + "/out1/c/b/f2", encoding: .utf8)) == "two")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out1/c/b/f1"), "f1 went with the replaced directory")
        #expect((try? String(contentsOfFile: dir + "/out2/x/y", encoding: .utf8)) == "y")
        let bad = try execute(unpack, ["unpack-layer", dir + "/plain.tar", dir + "/out3", dir + "/escape.tar", dir + "/out3"])
        #expect(bad.code != 0 && bad.stderr.contains("up/z leads outside the layer"), "\(bad)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/z") && !FileManager.default.fileExists(atPath: NSTemporaryDirectory() + "z"))
        let odd = try execute(unpack, ["unpack-layer", dir + "/plain.tar"])
        #expect(odd.code != 0 && odd.stderr.contains("expected LAYER DIR pairs"), "\(odd)")
    }

    @Test("a layer that unpacks past --max-layer-size is refused; nothing of it stays")
    func layerSizeLimit() throws {
        let d = try DaemonInstance(["--max-layer-size", "64m"])
        defer { d.stop() }
        let r = try d.importImage("bomb.tar")
        #expect(r.code != 0 && r.stderr.contains("more than \(64 << 20) bytes"), "\(r)")
        let root = d.dir + "/root"
        #expect(Self.entries(root + "/content/blobs/sha256") == [] && Self.entries(root + "/snapshots") == [])
        #expect(try d.sctr(["images", "-q"]).stdout.isEmpty)
        // The same archive under a limit it fits.
        let roomy = try DaemonInstance(["--max-layer-size", "256m"])
        defer { roomy.stop() }
        #expect(try roomy.importImage("bomb.tar").code == 0)
    }

    @Test("the same docker-archive gives the same image id every time; import names what it is given")
    func stableIdsAndNames() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-docker.tar").code == 0)
        let first = try d.sctr(["images", "--format", "{{.Digest}}"]).stdout
        #expect(first.hasPrefix("sha256:"))
        #expect(try d.importImage("layered-docker.tar").code == 0)
        #expect(try d.sctr(["images", "--format", "{{.Digest}}"]).stdout == first, "importing again changed the id")
        let other = try DaemonInstance()
        defer { other.stop() }
        #expect(try other.importImage("layered-docker.tar").code == 0)
        #expect(try other.sctr(["images", "--format", "{{.Digest}}"]).stdout == first, "another daemon, another id")
        let named = try d.sctr(["import", TestImages.dir + "/base-oci.tar", "mine/base:v1"])
        #expect(named.code == 0 && named.stdout.contains("docker.io/mine/base:v1"), "\(named)")
    }

    @Test("diff shows what a container added, changed and deleted; export writes its filesystem as a tar")
    func diffAndExport() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        #expect(try d.run(["--name", "changed"], "test/layered:oci", ["sh", "-c", "echo new > /added; echo more >> /layer2; rm /data/b"]).code == 0)
        let diff = try d.sctr(["diff", "changed"])
        let lines = Set(diff.stdout.split(separator: "\n").map(String.init))
        #expect(diff.code == 0 && lines.isSuperset(of: ["A /added", "C /layer2", "D /data/b", "C /data"]), "\(diff)")
        let tar = d.dir + "/changed.tar"
        #expect(try d.sctr(["export", "-o", tar, "changed"]).code == 0)
        let listing = try execute("/bin/tar", ["-tf", tar]).stdout
        #expect(listing.contains("./added") && listing.contains("./bin/busybox") && !listing.contains("./data/b\n"), "\(listing.prefix(300))")
        let content = try execute("/bin/tar", ["-xOf", tar, "./layer2"]).stdout
        #expect(content == "top\nmore\n")
    }

    @Test("image prune, volume prune and system df; imports stop under --min-free-space with nothing left")
    func pruneAndDiskUsage() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        #expect(try d.importImage("base-oci.tar").code == 0)
        #expect(try d.run(["-d", "--name", "keeper", "-v", "kept:/kept"], "test/layered:oci", ["sleep", "1000"]).code == 0)
        #expect(try d.sctr(["volume", "create", "spare"]).code == 0)
        let df = try d.sctr(["system", "df"])
        #expect(df.code == 0 && df.stdout.contains("Images") && df.stdout.contains("Local Volumes"), "\(df)")
        let images = try d.sctr(["image", "prune", "-a", "-f"])
        #expect(images.code == 0 && images.stdout.contains("test/base:1") && !images.stdout.contains("test/layered"), "\(images)")
        let volumes = try d.sctr(["volume", "prune", "-f"])
        #expect(volumes.code == 0 && volumes.stdout.contains("spare") && !volumes.stdout.contains("kept"), "\(volumes)")
        #expect(try d.sctr(["images", "--format", "{{.Repository}}"]).stdout == "docker.io/test/layered\n")

        let full = try DaemonInstance(["--min-free-space", "1000t"])
        defer { full.stop() }
        let refused = try full.importImage("layered-oci.tar")
        #expect(refused.code != 0 && refused.stderr.contains("--min-free-space"), "\(refused)")
        #expect(Self.entries(full.dir + "/root/content/blobs/sha256") == [] && Self.entries(full.dir + "/root/snapshots") == [])
    }
}
