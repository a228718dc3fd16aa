import API
import Foundation
import ImageStore

/// `container.diff` and `container.export`: what a container changed in its image (its
/// overlay upper directory), and its whole filesystem as a tar.
extension Daemon {
    /// Added, changed and deleted paths, as docker's diff: from the upper directory, an entry
    /// that exists in a lower layer is changed, a whiteout is deleted, the rest added.
    func diff(_ c: Metadata.ContainerRow) throws -> ContainerChanges {
        let upper = containerDir(c.id) + "/upper"
        guard isOverlayRootfs(c.id) else { throw APIError.precondition("diff needs the overlay snapshotter (\(c.name) has a copied rootfs)") }
        let image = try storedImage(manifestDigest: c.manifestDigest, name: nil)
        let lowers = try Snapshotter.chainIDs(image.config.rootfs.diff_ids).map { try snapshots.path(chainID: $0) }
        var changes: [ContainerChanges.Change] = []
        let walker = FileManager.default.enumerator(atPath: upper)
        while let relative = walker?.nextObject() as? String {
            var st = stat()
            guard lstat(upper + "/" + relative, &st) == 0 else { continue }
            let path = "/" + relative
            let inLower = lowers.contains { FileManager.default.fileExists(atPath: $0 + path) || Daemon.isSymlink($0 + path) }
            if (st.st_mode & S_IFMT) == S_IFCHR && st.st_rdev == 0 {
                changes.append(.init(kind: "D", path: path))
            } else {
                changes.append(.init(kind: inLower ? "C" : "A", path: path))
            }
        }
        return ContainerChanges(changes: changes.sorted { $0.path < $1.path })
    }

    /// The container's filesystem (its image with its changes; not its volumes) as a tar
    /// written to `hostPath`, by GNU tar: owners numeric, links as links.
    func export(_ c: Metadata.ContainerRow, to hostPath: String) throws {
        guard hostPath.hasPrefix("/") else { throw APIError.params("params.hostPath: an absolute path") }
        guard FileManager.default.fileExists(atPath: rootfsDir(c.id) + "/") else { throw APIError.precondition("container \(c.name) has no root filesystem") }
        let out = try execute("/bin/tar", ["--numeric-owner", "--xattrs", "-C", rootfsDir(c.id), "-cf", hostPath, "."])
        guard out.code == 0 else { throw APIError.internal("tar: \(out.stderr)") }
    }

    private func isOverlayRootfs(_ id: String) -> Bool {
        let info = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return info.split(separator: "\n").contains { $0.contains(" " + rootfsDir(id) + " ") && $0.contains(" - overlay ") }
    }

    static func isSymlink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }
}
