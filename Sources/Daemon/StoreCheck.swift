import API
import Foundation
import ImageStore
import OCI

/// `scontainerd check`: the store checked against itself, as fsck checks a file system: every
/// blob hashes to its name, no half-written file is left, every image's documents, layers and
/// snapshots are there, every container's directories are. Run with the daemon stopped (it
/// takes the root's lock). Returns the problems found, in words.
public enum StoreCheck {
    public static func run(root: String) throws -> [String] {
        let lock = try Daemon.lockRoot(root)
        defer { close(lock) }
        var problems: [String] = []
        let fm = FileManager.default
        let content = try ContentStore(root: root + "/content")
        let snapshots = try Snapshotter(root: root + "/snapshots", content: content)
        let blobDir = root + "/content/blobs/sha256"
        for name in (try? fm.contentsOfDirectory(atPath: blobDir)) ?? [] {
            guard let data = fm.contents(atPath: blobDir + "/" + name) else { problems.append("blob \(name): unreadable"); continue }
            var hash = SHA256()
            hash.update(Array(data))
            if hash.finish() != name { problems.append("blob \(name): its bytes do not hash to its name") }
        }
        for dir in ["/content/ingest", "/content/scratch", "/snapshots/.scratch"] {
            for name in (try? fm.contentsOfDirectory(atPath: root + dir)) ?? [] { problems.append("\(dir)/\(name): a half-written file") }
        }
        let metadata = try Metadata(path: root + "/metadata.db")
        for image in try metadata.images(nil) {
            let what = "image \(image.namespace)/\(image.name)"
            do {
                let manifest = try JSONDecoder().decode(ImageManifest.self, from: content.read(image.manifestDigest))
                let config = try JSONDecoder().decode(ImageConfiguration.self, from: content.read(manifest.config.digest))
                for layer in manifest.layers where !content.has(layer.digest) { problems.append("\(what): layer \(layer.digest) is missing") }
                for chain in Snapshotter.chainIDs(config.rootfs.diff_ids) where !fm.fileExists(atPath: try snapshots.path(chainID: chain)) {
                    problems.append("\(what): snapshot \(chain) is missing")
                }
            } catch {
                problems.append("\(what): \(error)")
            }
        }
        for c in try metadata.containers(nil) where c.status != .creating {
            if !fm.fileExists(atPath: root + "/containers/" + c.id) { problems.append("container \(c.namespace)/\(c.name): its directory is missing") }
        }
        let known = Set(try metadata.containers(nil).map(\.id))
        for id in (try? fm.contentsOfDirectory(atPath: root + "/containers")) ?? [] where !known.contains(id) {
            problems.append("containers/\(id): no container has this directory")
        }
        return problems
    }
}
