import CLinux
import Foundation
import OCI

/// An image as the store keeps it: its name (if the archive gave one), manifest, config and
/// layers, all stored in the content store.
public struct StoredImage: Sendable {
    public var name: String?
    public var manifestDigest: String
    public var manifest: ImageManifest
    public var config: ImageConfiguration

    public init(name: String?, manifestDigest: String, manifest: ImageManifest, config: ImageConfiguration) {
        self.name = name; self.manifestDigest = manifestDigest; self.manifest = manifest; self.config = config
    }
}

/// Reads images from an OCI image layout (directory), an oci-archive (a tar of one) or a
/// docker-archive (`docker save`), for the linux/amd64 platform, into the content store.
/// Archives are unpacked into a scratch directory inside the store first, through the same
/// guarded unpacker as layers, and read back with RESOLVE_BENEATH: a symlink in an archive
/// cannot make the importer read a host file.
public struct ImageImporter {
    public let content: ContentStore
    public let scratchRoot: String
    public var platform = Platform(architecture: "amd64", os: "linux")

    public init(content: ContentStore, scratchRoot: String) {
        self.content = content
        self.scratchRoot = scratchRoot
    }

    /// Imports every image in `path`; `progress` hears about each blob as it is stored.
    public func importImages(from path: String, progress: (String) -> Void = { _ in }) throws -> [StoredImage] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw ImageError("\(path): no such file") }
        if isDir.boolValue { return try importLayout(Layout(root: path), progress: progress) }
        try FileManager.default.createDirectory(atPath: scratchRoot, withIntermediateDirectories: true)
        let scratch = scratchRoot + "/" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        progress("unpacking archive")
        var source: ByteSource = try FileSource(path: path)
        if FileSource.peek(path, count: 2) == [0x1f, 0x8b] { source = try GzipSource(source) }
        let unpacker = try LayerUnpacker(root: scratch)
        defer { unpacker.close() }
        do { try unpacker.unpack(TarReader(source)) } catch { throw ImageError("\(path): \(error)") }
        let layout = try Layout(root: scratch)
        if layout.exists("index.json") { return try importLayout(layout, progress: progress) }
        if layout.exists("manifest.json") { return try importDockerArchive(layout, progress: progress) }
        // docker import: a filesystem tarball becomes a one-layer image (it unpacked cleanly above).
        return [try importFilesystem(path, progress: progress)]
    }

    /// A filesystem tarball (gzip or not) as the one layer of a new image, as `docker import`.
    private func importFilesystem(_ path: String, progress: (String) -> Void) throws -> StoredImage {
        progress("a filesystem tarball: storing it as a one-layer image")
        let gzip = FileSource.peek(path, count: 2) == [0x1f, 0x8b]
        let layer = try content.ingest(FileSource(path: path))
        var plain: ByteSource = try FileSource(path: path)
        if gzip { plain = try GzipSource(plain) }
        let diffID = try HashingSource(plain).digest()
        let now = ISO8601DateFormatter().string(from: Date())
        var history = ImageConfiguration.History()
        history.created = now
        history.created_by = "sctr import"
        history.comment = "Imported from " + (path as NSString).lastPathComponent
        let config = ImageConfiguration(architecture: platform.architecture, os: platform.os, created: now, config: ImageConfiguration.RunConfig(),
                                        rootfs: ImageConfiguration.RootFS(type: "layers", diff_ids: [diffID]), history: [history])
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let configData = try encoder.encode(config)
        let configDigest = try content.ingest(data: configData)
        var size = stat()
        stat(try content.path(layer), &size)
        let manifest = ImageManifest(config: Descriptor(mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: Int64(configData.count)),
                                     layers: [Descriptor(mediaType: gzip ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar",
                                                         digest: layer, size: Int64(size.st_size))])
        let digest = try content.ingest(data: try JSONEncoder().encode(manifest))
        return StoredImage(name: nil, manifestDigest: digest, manifest: manifest, config: try JSONDecoder().decode(ImageConfiguration.self, from: configData))
    }

    // MARK: OCI layout

    private func importLayout(_ layout: Layout, progress: (String) -> Void) throws -> [StoredImage] {
        let index = try decode(ImageIndex.self, layout.data("index.json"), what: "index.json")
        var images: [StoredImage] = []
        for descriptor in index.manifests {
            // containerd's annotation is a whole name; the spec's ref.name is often a bare tag
            // (skopeo's oci:DIR:bookworm), which names no repository: unnamed, unless given one.
            let refName = descriptor.annotations?["org.opencontainers.image.ref.name"].flatMap { $0.contains(":") || $0.contains("/") ? $0 : nil }
            let name = try (descriptor.annotations?["io.containerd.image.name"] ?? refName).map { try ImageImporter.normalize($0) }
            let chosen = try selectManifest(descriptor, layout: layout, depth: 0)
            images.append(try storeImage(manifestDescriptor: chosen, name: name, progress: progress) { digest, expectedSize in
                try layout.source(blob: digest, size: expectedSize)
            })
        }
        guard !images.isEmpty else { throw ImageError("index.json lists no manifests") }
        return images
    }

    /// Walks nested indexes down to the manifest for our platform.
    private func selectManifest(_ descriptor: Descriptor, layout: Layout, depth: Int) throws -> Descriptor {
        guard depth < 4 else { throw ImageError("image indexes nested too deeply") }
        switch descriptor.mediaType {
        case MediaType.manifest, MediaType.dockerManifest:
            if let p = descriptor.platform, p.os != platform.os || p.architecture != platform.architecture {
                throw ImageError("manifest \(descriptor.digest) is for \(p.os)/\(p.architecture), not \(platform.os)/\(platform.architecture)")
            }
            return descriptor
        case MediaType.index, MediaType.dockerManifestList:
            let data = try ingestAndRead(descriptor, layout: layout)
            let nested = try decode(ImageIndex.self, data, what: descriptor.digest)
            let matching = nested.manifests.filter { $0.platform.map { $0.os == platform.os && $0.architecture == platform.architecture } ?? false }
            guard let first = matching.first ?? (nested.manifests.count == 1 && nested.manifests[0].platform == nil ? nested.manifests[0] : nil) else {
                let have = nested.manifests.compactMap { $0.platform.map { "\($0.os)/\($0.architecture)" } }.joined(separator: ", ")
                throw ImageError("no manifest for \(platform.os)/\(platform.architecture) in \(descriptor.digest) (has \(have))")
            }
            return try selectManifest(first, layout: layout, depth: depth + 1)
        default:
            throw ImageError("unsupported media type \(descriptor.mediaType) in the index")
        }
    }

    private func ingestAndRead(_ descriptor: Descriptor, layout: Layout) throws -> Data {
        try content.ingest(layout.source(blob: descriptor.digest, size: descriptor.size), expected: descriptor.digest, size: descriptor.size)
        return try content.read(descriptor.digest)
    }

    /// Stores manifest, config and layers (each verified) and checks the config's platform.
    private func storeImage(manifestDescriptor: Descriptor, name: String?, progress: (String) -> Void,
                            blob: (String, Int64?) throws -> ByteSource) throws -> StoredImage {
        try content.ingest(blob(manifestDescriptor.digest, manifestDescriptor.size), expected: manifestDescriptor.digest,
                           size: manifestDescriptor.size)
        let manifest = try decode(ImageManifest.self, content.read(manifestDescriptor.digest), what: "manifest")
        try content.ingest(blob(manifest.config.digest, manifest.config.size), expected: manifest.config.digest, size: manifest.config.size)
        let config = try decode(ImageConfiguration.self, content.read(manifest.config.digest), what: "image config")
        if let os = config.os, let arch = config.architecture, os != platform.os || arch != platform.architecture {
            throw ImageError("image is for \(os)/\(arch), not \(platform.os)/\(platform.architecture)")
        }
        guard config.rootfs.diff_ids.count == manifest.layers.count else {
            throw ImageError("image config lists \(config.rootfs.diff_ids.count) diff IDs for \(manifest.layers.count) layers")
        }
        for (i, layer) in manifest.layers.enumerated() {
            progress("layer \(i + 1)/\(manifest.layers.count) \(layer.digest) \(layer.size)")
            try content.ingest(blob(layer.digest, layer.size), expected: layer.digest, size: layer.size)
        }
        return StoredImage(name: name, manifestDigest: manifestDescriptor.digest, manifest: manifest, config: config)
    }

    // MARK: docker archive

    /// One image in a docker-archive's manifest.json: files by path inside the archive.
    private struct DockerManifestEntry: Decodable {
        let Config: String
        let RepoTags: [String]?
        let Layers: [String]
    }

    /// `docker save`: manifest.json names the config and layer files; they are stored as
    /// blobs under their digests and an OCI manifest is written for them.
    private func importDockerArchive(_ layout: Layout, progress: (String) -> Void) throws -> [StoredImage] {
        let entries = try decode([DockerManifestEntry].self, layout.data("manifest.json"), what: "manifest.json")
        var images: [StoredImage] = []
        for entry in entries {
            let configDigest = try content.ingest(layout.source(path: entry.Config))
            let configData = try content.read(configDigest)
            let config = try decode(ImageConfiguration.self, configData, what: "image config")
            var layers: [Descriptor] = []
            for (i, file) in entry.Layers.enumerated() {
                progress("layer \(i + 1)/\(entry.Layers.count) \(file)")
                let gz = layout.peek(file) == [0x1f, 0x8b]
                let digest = try content.ingest(layout.source(path: file))
                let size = (try? FileManager.default.attributesOfItem(atPath: content.path(digest))[.size] as? Int64) ?? 0
                layers.append(Descriptor(mediaType: gz ? MediaType.layerGzip : MediaType.layer, digest: digest, size: size))
            }
            let manifest = ImageManifest(config: Descriptor(mediaType: MediaType.config, digest: configDigest, size: Int64(configData.count)),
                                         layers: layers)
            // Sorted keys: the same archive gives the same manifest, so the same image id.
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let manifestData = try encoder.encode(manifest)
            let manifestDigest = try content.ingest(data: manifestData)
            let names = try (entry.RepoTags ?? []).map { try ImageImporter.normalize($0) }
            let stored = StoredImage(name: names.first, manifestDigest: manifestDigest, manifest: manifest, config: config)
            guard config.rootfs.diff_ids.count == layers.count else {
                throw ImageError("image config lists \(config.rootfs.diff_ids.count) diff IDs for \(layers.count) layers")
            }
            if let os = config.os, let arch = config.architecture, os != platform.os || arch != platform.architecture {
                throw ImageError("image is for \(os)/\(arch), not \(platform.os)/\(platform.architecture)")
            }
            images.append(stored)
            for extra in names.dropFirst() { images.append(StoredImage(name: extra, manifestDigest: manifestDigest, manifest: manifest, config: config)) }
        }
        guard !images.isEmpty else { throw ImageError("manifest.json lists no images") }
        return images
    }

    /// "busybox" -> "docker.io/library/busybox:latest"; a name outside docker's grammar
    /// (`../../etc/x`, a newline, 5,000 characters) fails the import.
    public static func normalize(_ reference: String) throws -> String {
        do { return try ImageReference.normalize(reference) } catch { throw ImageError("image name: \(error)") }
    }

    private func decode<T: Decodable>(_ type: T.Type, _ data: Data, what: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: data) } catch {
            throw ImageError("\(what) is not a valid \(T.self): \(error)")
        }
    }
}

/// A directory read only beneath its root (openat2 RESOLVE_BENEATH). Its directory fd
/// closes with it.
final class Layout {
    let root: String
    let fd: Int32

    deinit { close(fd) }

    init(root: String) throws {
        self.root = root
        fd = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw ImageError("open \(root): \(String(cString: strerror(errno)))") }
    }

    func open(_ relative: String) throws -> Int32 {
        let clean = relative.hasPrefix("/") ? String(relative.drop { $0 == "/" }) : relative
        let f = cl_openat_beneath(fd, clean, O_RDONLY, 0)
        if f < 0 { throw ImageError("\(relative): \(errno == EXDEV ? "leads outside the archive" : String(cString: strerror(errno)))") }
        return f
    }

    func exists(_ relative: String) -> Bool {
        let f = cl_openat_beneath(fd, relative, O_RDONLY, 0)
        if f >= 0 { close(f) }
        return f >= 0
    }

    func data(_ relative: String) throws -> Data {
        let f = try open(relative)
        let handle = FileHandle(fileDescriptor: f, closeOnDealloc: true)
        return handle.readDataToEndOfFile()
    }

    func source(path relative: String) throws -> ByteSource { FDSource(fd: try open(relative)) }

    func source(blob digest: String, size: Int64?) throws -> ByteSource {
        try source(path: "blobs/sha256/" + ContentStore.hex(digest))
    }

    func peek(_ relative: String) -> [UInt8] {
        guard let f = try? open(relative) else { return [] }
        defer { close(f) }
        var buf = [UInt8](repeating: 0, count: 2)
        return read(f, &buf, 2) == 2 ? buf : []
    }
}

/// An open fd as a byte source (closed with it).
final class FDSource: ByteSource {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno != EINTR { throw ImageError("read: \(String(cString: strerror(errno)))") }
        }
    }
}
