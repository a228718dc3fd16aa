import API
import Foundation
import ImageStore
import OCI
import Registry
import Wire

/// `image.pull`: the registry client fills the content store; the image is recorded under its
/// normalized name as an import would be.
extension Daemon {
    func pullImage(_ ns: String, _ p: PullParams, progress: @escaping @Sendable (ImportProgress) -> Void) throws -> ImageInfo {
        let ref: ImageReference
        do { ref = try ImageReference(parsing: p.reference) } catch { throw APIError.params("reference: \(error)") }
        try checkFreeSpace()
        let platform = p.platform ?? "linux/amd64"
        let digest: String = try storeLock.withImport {
            try Daemon.waitFor {
                try await self.registry.pull(ref, platform: platform, into: self.content) { pp in
                    var n = ImportProgress(message: "\(pp.digest.dropFirst(7).prefix(12)) \(pp.done)/\(pp.total)", current: nil, total: nil)
                    n.digest = pp.digest; n.bytes = pp.done; n.totalBytes = pp.total
                    progress(n)
                }
            }
        }
        let image = try storedImage(manifestDigest: digest, name: ref.description)
        try metadata.putImage(ns, name: ref.description, manifestDigest: digest, labels: [:],
                              event: EventDraft(namespace: ns, type: .image, action: .pull, id: digest, attributes: ["name": ref.description]))
        return imageInfo(image, Metadata.ImageRow(namespace: ns, name: ref.description, manifestDigest: digest, created: Timestamp.now(), labels: [:]))
    }

    /// `image.push`: a stored image to the registry its name names; blobs another repository
    /// of that registry holds (by this daemon's records) are mounted rather than uploaded.
    func pushImage(_ ns: String, _ p: PushParams, progress: @escaping @Sendable (ImportProgress) -> Void) throws -> ImageInfo {
        let (image, row) = try findImage(ns, p.reference)
        let ref: ImageReference
        do { ref = try ImageReference(parsing: row.name) } catch { throw APIError.params("reference: \(error)") }
        guard row.name != image.manifestDigest, ref.digest == nil else { throw APIError.params("reference: push needs a name with a tag (tag the image first)") }
        let siblings = try metadata.images(nil).compactMap { try? ImageReference(parsing: $0.name) }.filter { $0.domain == ref.domain && $0.path != ref.path }.map(\.path)
        try storeLock.withImport {
            try Daemon.waitFor {
                try await self.registry.push(ref, manifestDigest: image.manifestDigest, from: self.content, mountFrom: Array(Set(siblings)).sorted()) { pp in
                    var n = ImportProgress(message: "\(pp.digest.dropFirst(7).prefix(12)) \(pp.done)/\(pp.total)", current: nil, total: nil)
                    n.digest = pp.digest; n.bytes = pp.done; n.totalBytes = pp.total
                    progress(n)
                }
            }
        }
        try metadata.putImage(ns, name: row.name, manifestDigest: image.manifestDigest, labels: row.labels,
                              event: EventDraft(namespace: ns, type: .image, action: .push, id: image.manifestDigest, attributes: ["name": row.name]))
        return imageInfo(image, row)
    }

    /// `registry.login` and `registry.logout`: credentials checked against the registry, kept
    /// in the daemon's auth file (docker's config.json, 0600).
    func login(_ registry: String, _ credentials: Credentials?) throws {
        guard !registry.isEmpty, registry.utf8.count <= 255, registry.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-:[]".contains($0)) }) else {
            throw APIError.params("registry: \(ReferenceError.shown(registry)) is not host[:port]")
        }
        if let c = credentials, c.username.isEmpty || c.username.contains(":") || c.password.isEmpty {
            throw APIError.params("username and password: both, and no ':' in the username")
        }
        try Daemon.waitFor { try await self.registry.login(registry, credentials) }
    }

    /// Runs async work to completion from one of the daemon's request threads; a registry's
    /// failure becomes an API error with its words.
    static func waitFor<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
        let box = ResultBox<T>(), done = DispatchSemaphore(value: 0)
        Task {
            do { box.result = .success(try await work()) } catch { box.result = .failure(error) }
            done.signal()
        }
        done.wait()
        switch box.result! {
        case .success(let value): return value
        case .failure(let e as RegistryError): throw APIError(e.notFound ? .notFound : e.unauthorized ? .failedPrecondition : .invalidImage, e.description)
        case .failure(let e): throw e
        }
    }
}

/// The outcome of async work, handed to the thread that waits for it.
final class ResultBox<T>: @unchecked Sendable { var result: Result<T, Error>? }
