import AsyncHTTPClient
import Foundation
import ImageStore
import NIOCore
import NIOHTTP1
import OCI

/// The distribution protocol's push: each blob the registry lacks is mounted from another
/// repository of the same registry when one holds it, else uploaded (in one PUT, or in PATCH
/// chunks when large); then the manifest, byte for byte, under the tag.
extension Registry {
    /// Blobs above this go up in chunks of this size.
    static let chunkBytes = 8 << 20

    /// Pushes the stored manifest `manifestDigest` (and its blobs) as `ref`. `mountFrom`:
    /// repositories of the same registry that may hold the blobs already.
    public func push(_ ref: ImageReference, manifestDigest: String, from store: ContentStore, mountFrom: [String] = [],
                     progress: @escaping @Sendable (PullProgress) -> Void) async throws {
        let t = try transport(Registry.apiHost(ref.domain))
        let scope = "repository:\(ref.path):pull,push"
        let data = try store.read(manifestDigest)
        let manifest = try JSONDecoder().decode(ImageManifest.self, from: data)
        for blob in [manifest.config] + manifest.layers {
            guard try await !exists(blob, ref: ref, t: t, scope: scope) else { progress(PullProgress(digest: blob.digest, done: blob.size, total: blob.size)); continue }
            var mounted = false
            for source in mountFrom where source != ref.path {
                if try await mount(blob, from: source, ref: ref, t: t, scope: scope) { mounted = true; break }
            }
            if !mounted { try await upload(blob, ref: ref, t: t, scope: scope, store: store, progress: progress) }
            progress(PullProgress(digest: blob.digest, done: blob.size, total: blob.size))
        }
        let type = manifest.mediaType ?? "application/vnd.oci.image.manifest.v1+json"
        let tag = ref.tag ?? ref.digest ?? "latest"
        let response = try await t.send(.PUT, "/v2/\(ref.path)/manifests/\(tag)", scope: scope, headers: [("Content-Type", type)],
                                        body: { .bytes(ByteBuffer(bytes: data)) })
        let body = try? await response.body.collect(upTo: 1 << 16)
        guard response.status == .created || response.status == .ok else { throw RegistryError("\(ref): manifest: \(Registry.errorText(response.status, body))") }
        if let echoed = response.headers.first(name: "Docker-Content-Digest"), echoed != manifestDigest {
            throw RegistryError("\(ref): the registry stored the manifest as \(echoed), not \(manifestDigest)")
        }
    }

    private func exists(_ d: Descriptor, ref: ImageReference, t: Transport, scope: String) async throws -> Bool {
        let response = try await t.send(.HEAD, "/v2/\(ref.path)/blobs/\(d.digest)", scope: scope)
        _ = try? await response.body.collect(upTo: 1 << 16)
        return response.status == .ok
    }

    /// A cross-repository mount: 201 if the registry had it under `source`.
    private func mount(_ d: Descriptor, from source: String, ref: ImageReference, t: Transport, scope: String) async throws -> Bool {
        let query = "mount=\(d.digest)&from=\(source.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? source)"
        let response = try await t.send(.POST, "/v2/\(ref.path)/blobs/uploads/?\(query)", scope: scope,
                                        headers: [("Content-Length", "0")], body: { .bytes(ByteBuffer()) })
        _ = try? await response.body.collect(upTo: 1 << 16)
        if response.status == .accepted, let location = response.headers.first(name: "Location") {
            // Not mounted: an upload session was opened instead; cancel it.
            let cancel = try? await t.send(.DELETE, absolute(location, t), scope: scope)
            _ = try? await cancel?.body.collect(upTo: 1 << 16)
        }
        return response.status == .created
    }

    /// Uploads a blob: POST for a session, then one PUT with it all, or PATCHes of
    /// `chunkBytes` and a closing PUT.
    private func upload(_ d: Descriptor, ref: ImageReference, t: Transport, scope: String, store: ContentStore,
                        progress: @escaping @Sendable (PullProgress) -> Void) async throws {
        let start = try await t.send(.POST, "/v2/\(ref.path)/blobs/uploads/", scope: scope, headers: [("Content-Length", "0")], body: { .bytes(ByteBuffer()) })
        let startBody = try? await start.body.collect(upTo: 1 << 16)
        guard start.status == .accepted, var location = start.headers.first(name: "Location") else {
            throw RegistryError("\(ref): start upload of \(d.digest): \(Registry.errorText(start.status, startBody))")
        }
        let file = try FileHandle(forReadingFrom: URL(fileURLWithPath: try store.path(d.digest)))
        defer { try? file.close() }
        var sent: Int64 = 0
        if d.size > Int64(Registry.chunkBytes) {
            while sent < d.size {
                let chunk = try file.read(upToCount: Registry.chunkBytes) ?? Data()
                guard !chunk.isEmpty else { throw RegistryError("blob \(d.digest): shorter than its \(d.size) bytes") }
                let range = "\(sent)-\(sent + Int64(chunk.count) - 1)"
                let r = try await t.send(.PATCH, absolute(location, t), scope: scope,
                                         headers: [("Content-Type", "application/octet-stream"), ("Content-Range", range), ("Content-Length", String(chunk.count))],
                                         body: { .bytes(ByteBuffer(bytes: chunk)) })
                let body = try? await r.body.collect(upTo: 1 << 16)
                guard r.status == .accepted, let next = r.headers.first(name: "Location") else {
                    throw RegistryError("\(ref): upload of \(d.digest) at \(range): \(Registry.errorText(r.status, body))")
                }
                location = next
                sent += Int64(chunk.count)
                progress(PullProgress(digest: d.digest, done: sent, total: d.size))
            }
            try await finish(location, d, ref: ref, t: t, scope: scope, body: Data())
        } else {
            let whole = try file.readToEnd() ?? Data()
            try await finish(location, d, ref: ref, t: t, scope: scope, body: whole)
        }
    }

    private func finish(_ location: String, _ d: Descriptor, ref: ImageReference, t: Transport, scope: String, body: Data) async throws {
        let url = absolute(location, t) + (location.contains("?") ? "&" : "?") + "digest=\(d.digest)"
        let r = try await t.send(.PUT, url, scope: scope, headers: [("Content-Type", "application/octet-stream"), ("Content-Length", String(body.count))],
                                 body: { .bytes(ByteBuffer(bytes: body)) })
        let text = try? await r.body.collect(upTo: 1 << 16)
        guard r.status == .created else { throw RegistryError("\(ref): upload of \(d.digest): \(Registry.errorText(r.status, text))") }
    }

    /// A Location header as a URL the transport can send to (registries may send a path).
    private func absolute(_ location: String, _ t: Transport) -> String {
        location.hasPrefix("http") ? location : t.url(location)
    }
}
