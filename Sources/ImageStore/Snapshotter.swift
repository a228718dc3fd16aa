import Foundation
import OCI

/// Unpacked layers, one directory per chain ID (`snapshots/<hex>`), shared by every image
/// built on the same layers. A layer is unpacked into a scratch directory, its diff ID checked
/// against the image config, then renamed into place: a half-unpacked layer is never used.
public final class Snapshotter: @unchecked Sendable {
    public let root: String
    private let content: ContentStore
    private let lock = NSLock()
    /// The most bytes of file data one layer may unpack to (see LayerUnpacker.maxBytes).
    public let maxLayerBytes: Int

    public init(root: String, content: ContentStore, maxLayerBytes: Int = .max) throws {
        self.root = root
        self.content = content
        self.maxLayerBytes = maxLayerBytes
        try FileManager.default.createDirectory(atPath: root + "/.scratch", withIntermediateDirectories: true)
    }

    /// Chain IDs as the image spec defines them: the first is the first diff ID, then
    /// sha256(previous + " " + diffID).
    public static func chainIDs(_ diffIDs: [String]) -> [String] {
        var chains: [String] = []
        for diff in diffIDs {
            chains.append(chains.last.map { "sha256:" + SHA256.hex(Array("\($0) \(diff)".utf8)) } ?? diff)
        }
        return chains
    }

    /// Where a chain's unpacked layer lives; the digest is checked before it becomes a path.
    public func path(chainID: String) throws -> String { try root + "/" + ContentStore.hex(chainID) }

    /// Unpacks whatever layers are missing; returns the snapshot directories, lowest first.
    @discardableResult
    public func prepare(_ image: StoredImage, progress: (String) -> Void = { _ in }) throws -> [String] {
        let chains = Snapshotter.chainIDs(image.config.rootfs.diff_ids)
        var dirs: [String] = []
        for (i, layer) in image.manifest.layers.enumerated() {
            let dir = try path(chainID: chains[i])
            dirs.append(dir)
            if FileManager.default.fileExists(atPath: dir) { continue }
            progress("unpacking layer \(i + 1)/\(chains.count)")
            try unpack(layer, diffID: image.config.rootfs.diff_ids[i], into: dir)
        }
        return dirs
    }

    private func unpack(_ layer: Descriptor, diffID: String, into dir: String) throws {
        let scratch = root + "/.scratch/" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false)
        do {
            let blob = try content.path(layer.digest)
            var source: ByteSource = try FileSource(path: blob)
            if FileSource.peek(blob, count: 2) == [0x1f, 0x8b] { source = try GzipSource(source) }
            let hashing = HashingSource(source)
            let unpacker = try LayerUnpacker(root: scratch, maxBytes: maxLayerBytes)
            defer { unpacker.close() }
            try unpacker.unpack(TarReader(hashing))
            let actual = try hashing.digest()
            guard actual == diffID else { throw ImageError("layer \(layer.digest): diff ID is \(actual), the image config says \(diffID)") }
            chmod(scratch, 0o755)
            // Another import may have unpacked the same chain meanwhile; theirs is as good.
            if rename(scratch, dir) != 0 && errno != ENOTEMPTY && errno != EEXIST {
                throw ImageError("store snapshot: \(String(cString: strerror(errno)))")
            }
        } catch {
            Snapshotter.removeTree(scratch)
            throw error
        }
        Snapshotter.removeTree(scratch)
    }

    /// A container rootfs without overlayfs: every layer of the image unpacked in order into
    /// `dir`, whiteouts applied. Costs a full copy per container; used where overlay cannot mount.
    public func materialize(_ image: StoredImage, into dir: String) throws {
        let unpacker = try LayerUnpacker(root: dir, whiteouts: .apply, maxBytes: maxLayerBytes)
        defer { unpacker.close() }
        for layer in image.manifest.layers {
            let blob = try content.path(layer.digest)
            var source: ByteSource = try FileSource(path: blob)
            if FileSource.peek(blob, count: 2) == [0x1f, 0x8b] { source = try GzipSource(source) }
            try unpacker.unpack(TarReader(source))
        }
    }

    /// The chain directories no image in `keep` uses.
    public func unused(keeping images: [StoredImage]) -> [String] {
        let used = Set(images.flatMap { Snapshotter.chainIDs($0.config.rootfs.diff_ids) }.compactMap { try? ContentStore.hex($0) })
        let all = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return all.filter { !$0.hasPrefix(".") && !used.contains($0) }.map { root + "/" + $0 }
    }

    /// rm -rf that never follows symlinks (FileManager's removeItem does not either).
    public static func removeTree(_ path: String) {
        if FileManager.default.fileExists(atPath: path) { try? FileManager.default.removeItem(atPath: path) }
    }
}
