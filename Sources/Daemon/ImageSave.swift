import API
import Foundation
import ImageStore
import OCI

/// `image.save`: images as one archive that `image.import`, `docker load`, `podman load` and
/// skopeo read. oci-archive holds the blobs as stored (the manifest digest survives a round
/// trip); docker-archive, docker save's layout, holds uncompressed layers beside each config
/// (the config digest, docker's image id, survives).
extension Daemon {
    func save(_ ns: String, _ p: SaveParams) throws {
        guard p.hostPath.hasPrefix("/") else { throw APIError.params("params.hostPath: an absolute path") }
        guard !p.names.isEmpty, p.names.count <= 256 else { throw APIError.params("params.names: 1 to 256 images") }
        let format = p.format ?? "docker-archive"
        guard ["docker-archive", "oci-archive"].contains(format) else { throw APIError.params("params.format: docker-archive or oci-archive") }
        let images = try p.names.map { try findImage(ns, $0) }
        let staging = content.root + "/ingest/save-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        try storeLock.withImport {
            if format == "oci-archive" { try stageOCI(images, in: staging) } else { try stageDocker(images, in: staging) }
        }
        let temp = p.hostPath + ".sctr-save"
        let out = try execute("/bin/tar", ["--numeric-owner", "--owner=0", "--group=0", "--hard-dereference", "-C", staging, "-cf", temp, "."])
        guard out.code == 0, rename(temp, p.hostPath) == 0 else {
            unlink(temp)
            throw APIError.internal("write \(p.hostPath): \(out.stderr.isEmpty ? String(cString: strerror(errno)) : out.stderr)")
        }
    }

    /// oci-layout, index.json (each image named by containerd's and OCI's annotations), blobs.
    private func stageOCI(_ images: [(StoredImage, Metadata.ImageRow)], in dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir + "/blobs/sha256", withIntermediateDirectories: true)
        var entries: [Descriptor] = []
        for (image, row) in images {
            for d in [image.manifestDigest, image.manifest.config.digest] + image.manifest.layers.map(\.digest) {
                try stageBlob(d, at: dir + "/blobs/sha256/" + ContentStore.hex(d))
            }
            var entry = Descriptor(mediaType: image.manifest.mediaType ?? MediaType.manifest, digest: image.manifestDigest,
                                   size: Int64(try content.read(image.manifestDigest).count),
                                   platform: Platform(architecture: image.config.architecture ?? "amd64", os: image.config.os ?? "linux"))
            if row.name != image.manifestDigest, let ref = try? ImageReference(parsing: row.name) {
                entry.annotations = ["io.containerd.image.name": row.name, "org.opencontainers.image.ref.name": ref.tag ?? "latest"]
            }
            entries.append(entry)
        }
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: dir + "/oci-layout"))
        try Daemon.sortedJSON(ImageIndex(manifests: entries)).write(to: URL(fileURLWithPath: dir + "/index.json"))
    }

    /// manifest.json, CONFIGHEX.json, LAYERHEX/layer.tar (uncompressed), as docker save writes.
    private func stageDocker(_ images: [(StoredImage, Metadata.ImageRow)], in dir: String) throws {
        var manifest: [DockerArchiveEntry] = []
        for (image, row) in images {
            let configHex = try ContentStore.hex(image.manifest.config.digest)
            try stageBlob(image.manifest.config.digest, at: dir + "/" + configHex + ".json")
            var layers: [String] = []
            for (layer, diffID) in zip(image.manifest.layers, image.config.rootfs.diff_ids) {
                let hex = try ContentStore.hex(diffID)
                let path = dir + "/" + hex + "/layer.tar"
                if !FileManager.default.fileExists(atPath: path) {
                    try FileManager.default.createDirectory(atPath: dir + "/" + hex, withIntermediateDirectories: true)
                    try uncompressed(layer, to: path)
                }
                layers.append(hex + "/layer.tar")
            }
            let tags = row.name != image.manifestDigest && (try? ImageReference(parsing: row.name))?.digest == nil ? [Daemon.dockerTag(row.name)] : []
            manifest.append(DockerArchiveEntry(Config: configHex + ".json", RepoTags: tags, Layers: layers))
        }
        try Daemon.sortedJSON(manifest).write(to: URL(fileURLWithPath: dir + "/manifest.json"))
    }

    /// A stored blob at `path`: a hard link where the store's filesystem allows, else a copy.
    private func stageBlob(_ digest: String, at path: String) throws {
        if FileManager.default.fileExists(atPath: path) { return }
        let source = try content.path(digest)
        if link(source, path) != 0 { try FileManager.default.copyItem(atPath: source, toPath: path) }
    }

    /// A layer blob, gunzipped if it is gzip, at `path`.
    private func uncompressed(_ layer: Descriptor, to path: String) throws {
        let blob = try content.path(layer.digest)
        var source: ByteSource = try FileSource(path: blob)
        if FileSource.peek(blob, count: 2) == [0x1f, 0x8b] { source = try GzipSource(source) }
        guard let out = FileHandle(forWritingAtPath: path) ?? (FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil) else {
            throw APIError.internal("create \(path)")
        }
        defer { try? out.close() }
        var buffer = [UInt8](repeating: 0, count: 256 << 10)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            if n == 0 { break }
            try out.write(contentsOf: buffer[0..<n])
        }
    }

    static func sortedJSON<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    /// docker's short form of a name in RepoTags: `busybox:latest`, `registry:5000/a/b:1`.
    static func dockerTag(_ name: String) -> String {
        if name.hasPrefix("docker.io/library/") { return String(name.dropFirst(18)) }
        if name.hasPrefix("docker.io/") { return String(name.dropFirst(10)) }
        return name
    }
}
