import API
import Foundation
import ImageStore

/// Imports share the store; garbage collection has it alone: a blob an import has just
/// written (or found already there) is not yet named by any image, and must not go. The lease
/// containerd takes per import, as one readers-writer lock.
final class StoreLock: @unchecked Sendable {
    private let condition = NSCondition()
    private var imports = 0
    private var collecting = false

    func withImport<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        while collecting { condition.wait() }
        imports += 1
        condition.unlock()
        defer { condition.lock(); imports -= 1; condition.broadcast(); condition.unlock() }
        return try body()
    }

    func withCollection<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        while collecting || imports > 0 { condition.wait() }
        collecting = true
        condition.unlock()
        defer { condition.lock(); collecting = false; condition.broadcast(); condition.unlock() }
        return try body()
    }
}

/// `system.prune` and the content garbage collection behind it and `image.remove`.
extension Daemon {
    /// Removes every blob and snapshot no image of any namespace refers to, and what failed
    /// imports left in the scratch and ingest directories; the bytes freed.
    @discardableResult
    func collectGarbage() throws -> Int64 {
        try storeLock.withCollection {
            var images: [StoredImage] = []
            for row in try metadata.images(nil) { images.append(try storedImage(manifestDigest: row.manifestDigest, name: row.name)) }
            var keep = Set<String>()
            for image in images {
                keep.insert(image.manifestDigest)
                keep.insert(image.manifest.config.digest)
                for layer in image.manifest.layers { keep.insert(layer.digest) }
            }
            var freed: Int64 = 0
            let blobs = content.root + "/blobs/sha256"
            for hex in (try? FileManager.default.contentsOfDirectory(atPath: blobs)) ?? [] where !keep.contains("sha256:" + hex) {
                freed += Daemon.size(blobs + "/" + hex)
                unlink(blobs + "/" + hex)
            }
            let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: content.root + "/ingest")) ?? []).map { content.root + "/ingest/" + $0 }
                + ((try? FileManager.default.contentsOfDirectory(atPath: snapshots.root + "/.scratch")) ?? []).map { snapshots.root + "/.scratch/" + $0 }
            for dir in snapshots.unused(keeping: images) + leftovers {
                freed += Daemon.size(dir)
                Snapshotter.removeTree(dir)
            }
            return freed
        }
    }

    /// Stopped containers, images no container uses (with `all`; else only those without a
    /// name of their own), unused volumes (with `volumes`), then unreferenced content.
    func prune(_ ns: String, _ p: PruneParams) throws -> PruneResult {
        var result = PruneResult()
        for c in try metadata.containers(ns) where c.status == .exited || c.status == .created {
            try removeContainer(c, force: true)
            result.containersDeleted.append(c.id)
        }
        result.imagesDeleted = try pruneImages(ns, all: p.all == true)
        if p.volumes == true { result.volumesDeleted = try pruneVolumes(ns) }
        result.networksDeleted = try pruneNetworks(ns)
        result.spaceReclaimed = try collectGarbage()
        return result
    }

    /// Images no container of any namespace uses: all of them, or only those without a name.
    func pruneImages(_ ns: String, all: Bool) throws -> [String] {
        let used = Set(try metadata.containers(nil).map(\.manifestDigest))
        var deleted: [String] = []
        for row in try metadata.images(ns) where !used.contains(row.manifestDigest) && (all || row.name == row.manifestDigest) {
            _ = try metadata.removeImage(ns, name: row.name, event: EventDraft(namespace: ns, type: .image, action: .remove, id: row.manifestDigest, attributes: ["name": row.name]))
            deleted.append(row.name)
        }
        return deleted
    }

    /// Volumes no container of the namespace names.
    func pruneVolumes(_ ns: String) throws -> [String] {
        try metadata.volumes(ns).compactMap { v in (try? removeVolume(ns, v.name)).map { v.name } }
    }

    func diskUsage(_ ns: String) throws -> DiskUsage {
        let containers = try metadata.containers(ns)
        let volumes = try metadata.volumes(ns)
        let images = try metadata.images(ns)
        let used = Set(try metadata.containers(nil).map(\.manifestDigest))
        var reclaimable: Int64 = 0
        for row in try metadata.images(nil) where !used.contains(row.manifestDigest) {
            reclaimable += (try? storedImage(manifestDigest: row.manifestDigest, name: nil))?.manifest.layers.reduce(0) { $0 + $1.size } ?? 0
        }
        return DiskUsage(images: images.count, imagesBytes: Daemon.size(content.root) + Daemon.size(snapshots.root),
                         containers: containers.count, containersBytes: containers.reduce(0) { $0 + Daemon.size(containerDir($1.id)) },
                         volumes: volumes.count, volumesBytes: volumes.reduce(0) { $0 + Daemon.size(volumeDir(ns, $1.name)) },
                         reclaimableImagesBytes: reclaimable)
    }

    /// Bytes a file or a tree takes (its files' sizes).
    static func size(_ path: String) -> Int64 {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return Int64(st.st_size) }
        var total: Int64 = 0
        let walker = FileManager.default.enumerator(atPath: path)
        while let entry = walker?.nextObject() as? String {
            if lstat(path + "/" + entry, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { total += Int64(st.st_size) }
        }
        return total
    }
}
