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

    /// Unpacks whatever layers are missing, several at once (each chain is its own directory, so
    /// layers do not depend on each other until overlay stacks them); returns the snapshot
    /// directories, lowest first. The first failure is thrown after every unpack has ended.
    @discardableResult
    public func prepare(_ image: StoredImage, progress: (String) -> Void = { _ in }) throws -> [String] {
        let chains = Snapshotter.chainIDs(image.config.rootfs.diff_ids)
        let dirs = try chains.map { try path(chainID: $0) }
        let missing = dirs.indices.filter { !FileManager.default.fileExists(atPath: dirs[$0]) }
        if missing.isEmpty { return dirs }
        progress("unpacking \(missing.count) of \(chains.count) layers")
        let layers = image.manifest.layers, diffIDs = image.config.rootfs.diff_ids
        try Snapshotter.inParallel(missing.count) { k in
            let i = missing[k]
            try self.unpack(layers[i], diffID: diffIDs[i], into: dirs[i])
        }
        return dirs
    }

    /// Runs `count` jobs on up to one thread per CPU; throws the first job's error (by index)
    /// once all have finished, so no job is still writing when the caller cleans up.
    public static func inParallel(_ count: Int, _ job: @escaping @Sendable (Int) throws -> Void) throws {
        let errors = ErrorSlots(count)
        let width = min(count, max(1, ProcessInfo.processInfo.activeProcessorCount))
        let next = ErrorSlots.Counter()
        DispatchQueue.concurrentPerform(iterations: width) { _ in
            while let k = next.take(below: count) {
                do { try job(k) } catch { errors.set(k, error) }
            }
        }
        if let first = errors.first { throw first }
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

/// Per-job error slots and a shared job counter for `Snapshotter.inParallel`.
final class ErrorSlots: @unchecked Sendable {
    private var slots: [Error?]
    private let lock = NSLock()
    init(_ count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ k: Int, _ error: Error) { lock.withLock { slots[k] = error } }
    var first: Error? { lock.withLock { slots.lazy.compactMap { $0 }.first } }

    final class Counter: @unchecked Sendable {
        private var value = 0
        private let lock = NSLock()
        func take(below limit: Int) -> Int? {
            lock.withLock { defer { value += 1 }; return value < limit ? value : nil }
        }
    }
}
