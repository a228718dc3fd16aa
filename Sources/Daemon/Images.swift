import API
import Foundation
import ImageStore
import OCI
import Wire

/// Images: names per namespace over one shared content store and snapshot set.
extension Daemon {
    func storedImage(manifestDigest: String, name: String?) throws -> StoredImage {
        let manifest = try JSONDecoder().decode(ImageManifest.self, from: content.read(manifestDigest))
        let config = try JSONDecoder().decode(ImageConfiguration.self, from: content.read(manifest.config.digest))
        return StoredImage(name: name, manifestDigest: manifestDigest, manifest: manifest, config: config)
    }

    /// An image of the namespace by name (normalized), or by manifest digest (or a unique
    /// prefix of at least 6 hex digits).
    func findImage(_ ns: String, _ ref: String) throws -> (StoredImage, Metadata.ImageRow) {
        let rows = try metadata.images(ns)
        let normalized = try? ImageReference.normalize(ref)
        if let hit = rows.first(where: { $0.name == ref || $0.name == normalized }) {
            return (try storedImage(manifestDigest: hit.manifestDigest, name: hit.name), hit)
        }
        let hex = ref.hasPrefix("sha256:") ? String(ref.dropFirst(7)) : ref
        if hex.count >= 6, hex.allSatisfy(\.isHexDigit) {
            let byDigest = rows.filter { $0.manifestDigest.dropFirst(7).hasPrefix(hex) }
            if Set(byDigest.map(\.manifestDigest)).count == 1, let hit = byDigest.first {
                return (try storedImage(manifestDigest: hit.manifestDigest, name: hit.name), hit)
            }
        }
        throw APIError.notFound("no such image: \(ReferenceError.shown(ref))")
    }

    func imageInfo(_ image: StoredImage, _ row: Metadata.ImageRow) -> ImageInfo {
        ImageInfo(name: row.name, namespace: row.namespace, digest: image.manifestDigest, configDigest: image.manifest.config.digest,
                  size: image.manifest.layers.reduce(Int64(0)) { $0 + $1.size }, layers: image.manifest.layers.count,
                  created: row.created, labels: row.labels)
    }

    func importImages(_ ns: String, _ params: ImportParams, progress: (ImportProgress) -> Void) throws -> [ImageInfo] {
        try Validate.labels(params.labels)
        guard params.path.hasPrefix("/") else { throw APIError.params("params.path: an absolute path on the daemon's host") }
        let given: String?
        do { given = try params.name.map { try ImageReference.normalize($0) } } catch { throw APIError.params("params.name: \(error)") }
        var result: [ImageInfo] = []
        do {
            try storeLock.withImport {
                try checkFreeSpace()
                let images = try importer.importImages(from: params.path, progress: { progress(Daemon.progress($0)) })
                if given != nil && Set(images.map(\.manifestDigest)).count > 1 {
                    throw APIError.params("params.name: \(params.path) holds \(images.count) images; a name fits one")
                }
                for image in given != nil ? Array(images.prefix(1)) : images {
                    try checkFreeSpace()
                    try snapshots.prepare(image, progress: { progress(Daemon.progress($0)) })
                    let name = given ?? image.name ?? image.manifestDigest
                    try metadata.putImage(ns, name: name, manifestDigest: image.manifestDigest, labels: params.labels ?? [:],
                                          event: EventDraft(namespace: ns, type: .image, action: .import, id: image.manifestDigest, attributes: ["name": name]))
                    let row = Metadata.ImageRow(namespace: ns, name: name, manifestDigest: image.manifestDigest, created: Timestamp.now(), labels: params.labels ?? [:])
                    result.append(imageInfo(image, row))
                }
            }
        } catch let e as ImageError {
            // What the failed import wrote (blobs, a half-unpacked layer) goes again.
            logged("collect what the failed import left") { try collectGarbage() }
            throw APIError(.invalidImage, e.description)
        } catch let e as APIError where e.code == .unavailable {
            logged("collect what the stopped import left") { try collectGarbage() }
            throw e
        }
        return result
    }

    /// Refuses to go on when the store's disk is nearly full (`--min-free-space`).
    func checkFreeSpace() throws {
        var fs = statvfs()
        guard statvfs(config.root, &fs) == 0 else { return }
        let free = Int(fs.f_bavail) * Int(fs.f_frsize)
        if free < config.minFreeBytes {
            throw APIError(.unavailable, "the store's disk has \(free) bytes free, less than the daemon's --min-free-space (\(config.minFreeBytes))")
        }
    }

    /// "layer 2/5 sha256:… 1234" with its counts picked out.
    static func progress(_ text: String) -> ImportProgress {
        let words = text.split(separator: " ")
        if words.count >= 2, let slash = words[1].firstIndex(of: "/"), let done = Int(words[1][..<slash]), let total = Int(words[1][words[1].index(after: slash)...]) {
            return ImportProgress(message: text, current: done, total: total)
        }
        return ImportProgress(message: text, current: nil, total: nil)
    }

    func tagImage(_ ns: String, _ params: TagParams) throws -> String {
        let (image, row) = try findImage(ns, params.source)
        let target: String
        do { target = try ImageReference.normalize(params.target) } catch { throw APIError.params("params.target: \(error)") }
        try metadata.putImage(ns, name: target, manifestDigest: image.manifestDigest, labels: row.labels,
                              event: EventDraft(namespace: ns, type: .image, action: .tag, id: image.manifestDigest, attributes: ["name": target]))
        return target
    }

    func removeImage(_ ns: String, _ ref: String) throws {
        let (image, row) = try findImage(ns, ref)
        let names = try metadata.images(ns).filter { $0.manifestDigest == image.manifestDigest }
        if names.count == 1, let user = try metadata.containers(ns).first(where: { $0.manifestDigest == image.manifestDigest }) {
            throw APIError.conflict("image \(row.name) is used by container \(user.name)")
        }
        _ = try metadata.removeImage(ns, name: row.name, event: EventDraft(namespace: ns, type: .image, action: .remove, id: image.manifestDigest, attributes: ["name": row.name]))
        // Blobs and snapshots no image of any namespace refers to any more go; shared ones stay.
        logged("collect the image's content") { try collectGarbage() }
    }
}
