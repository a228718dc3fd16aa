import AsyncHTTPClient
import Foundation
import ImageStore
import NIOCore
import NIOHTTP1
import OCI

/// How far a pull is: bytes of one blob.
public struct PullProgress: Sendable {
    public var digest: String
    public var done: Int64
    public var total: Int64
}

/// The OCI distribution protocol's pull: the manifest by tag or digest (an index resolved to
/// the wanted platform), then the config and layers, several at once, each streamed into the
/// content store and verified on the way, skipped when present, resumed with Range after an
/// interruption.
public final class Registry: @unchecked Sendable {
    public let options: RegistryOptions
    let http: HTTPClient

    static let manifestTypes = [
        "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json",
    ]
    static let indexTypes = [
        "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
    static let layerTypes = [
        "application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.docker.image.rootfs.diff.tar",
    ]
    /// The most a config may have; layers are bounded by `maxBlobBytes`.
    static let maxConfigBytes: Int64 = 16 << 20
    public var maxBlobBytes: Int64 = 16 << 30

    public init(options: RegistryOptions) {
        self.options = options
        http = HTTPClient(eventLoopGroupProvider: .singleton,
                          configuration: HTTPClient.Configuration(redirectConfiguration: .follow(max: 5, allowCycles: false)))
    }

    deinit { try? http.syncShutdown() }

    /// Checks credentials against a registry (its `/v2/` with the auth it asks for) and stores
    /// them in the auth file; nil credentials log out (the entry is removed).
    public func login(_ registry: String, _ credentials: Credentials?) async throws {
        let host = Registry.apiHost(registry)
        if let credentials {
            let t = try Transport(host: host, options: options, http: http, credentials: credentials)
            let response = try await t.send(.GET, "/v2/", scope: "")
            _ = try? await response.body.collect(upTo: 1 << 16)
            guard response.status == .ok else { throw RegistryError("\(registry): login: \(Registry.errorText(response.status, nil))") }
        }
        do { try Credentials.store(credentials, host: registry, file: options.authFile) } catch { throw RegistryError("\(error)") }
    }

    /// docker.io's API host.
    static func apiHost(_ domain: String) -> String { domain == "docker.io" ? "registry-1.docker.io" : domain }

    /// A transport for one operation: credentials are read and tokens fetched afresh for each
    /// (a login or logout in between counts); the connections are the shared client's.
    func transport(_ host: String) throws -> Transport { try Transport(host: host, options: options, http: http) }

    /// Pulls `ref` for `platform` (`os/arch[/variant]`) into `store`; the manifest's digest.
    public func pull(_ ref: ImageReference, platform: String = "linux/amd64", into store: ContentStore,
                     progress: @escaping @Sendable (PullProgress) -> Void) async throws -> String {
        let hosts = (ref.domain == "docker.io" ? options.mirrors : []) + [Registry.apiHost(ref.domain)]
        var last: Error = RegistryError("no registry to pull \(ref) from")
        for host in hosts {
            do { return try await pull(ref, from: try transport(host), platform: platform, into: store, progress: progress) } catch let e as RegistryError where host != hosts.last && !e.unauthorized {
                last = e  // a mirror without the image: the next one, then the registry itself
            } catch {
                throw error
            }
        }
        throw last
    }

    private func pull(_ ref: ImageReference, from t: Transport, platform: String, into store: ContentStore,
                      progress: @escaping @Sendable (PullProgress) -> Void) async throws -> String {
        let scope = "repository:\(ref.path):pull"
        var (data, digest, type) = try await manifest(ref.digest ?? ref.tag ?? "latest", ref: ref, t: t, scope: scope)
        if let wanted = ref.digest, wanted != digest { throw RegistryError("\(ref): the registry sent a manifest whose digest is \(digest)") }
        if Registry.indexTypes.contains(type) {
            let chosen = try Registry.select(platform, from: data, ref: ref)
            (data, digest, type) = try await manifest(chosen, ref: ref, t: t, scope: scope)
            guard digest == chosen else { throw RegistryError("\(ref): the manifest for \(platform) does not match its digest \(chosen)") }
        }
        guard Registry.manifestTypes.contains(type) else { throw RegistryError("\(ref): unsupported manifest type \(type)") }
        let manifest: ImageManifest
        do { manifest = try JSONDecoder().decode(ImageManifest.self, from: data) } catch { throw RegistryError("\(ref): a manifest that does not decode: \(error)") }
        for layer in manifest.layers where !Registry.layerTypes.contains(layer.mediaType) {
            throw RegistryError("\(ref): layer \(layer.digest) is \(layer.mediaType), which this store cannot unpack")
        }
        guard manifest.config.size <= Registry.maxConfigBytes else { throw RegistryError("\(ref): a config of \(manifest.config.size) bytes is too large") }
        for b in manifest.layers where b.size < 0 || b.size > maxBlobBytes { throw RegistryError("\(ref): blob \(b.digest) declares \(b.size) bytes (at most \(maxBlobBytes))") }
        // The config first: a single-platform image for another platform stops here.
        try await fetchAll([manifest.config].filter { !store.has($0.digest) }, ref: ref, t: t, scope: scope, into: store, progress: { _ in })
        try Registry.check(platform, config: try store.read(manifest.config.digest), ref: ref)
        try await fetchAll(manifest.layers.filter { !store.has($0.digest) }, ref: ref, t: t, scope: scope, into: store, progress: progress)
        do { _ = try store.ingest(data: data, expected: digest) } catch { throw RegistryError("\(ref): store the manifest: \(error)") }
        return digest
    }

    /// A manifest or index by tag or digest: its bytes, digest and media type.
    private func manifest(_ reference: String, ref: ImageReference, t: Transport, scope: String) async throws -> (Data, String, String) {
        let accept = (Registry.manifestTypes + Registry.indexTypes).joined(separator: ", ")
        let response = try await t.send(.GET, "/v2/\(ref.path)/manifests/\(reference)", scope: scope, headers: [("Accept", accept)])
        if response.status == .notFound {
            _ = try? await response.body.collect(upTo: 1 << 16)
            throw RegistryError("\(ref.domain)/\(ref.path):\(reference): manifest unknown", notFound: true)
        }
        let limit = options.maxManifestBytes
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > limit {
            throw RegistryError("\(ref): a manifest of \(length) bytes is larger than the \(limit) allowed")
        }
        let body: ByteBuffer
        do { body = try await response.body.collect(upTo: limit) } catch {
            throw RegistryError("\(ref): a manifest larger than the \(limit) bytes allowed")
        }
        guard response.status == .ok else { throw RegistryError("\(ref): \(Registry.errorText(response.status, body))", notFound: response.status == .notFound) }
        let data = Data(body.readableBytesView)
        let digest = "sha256:" + SHA256.hex(Array(data))
        let declared = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["mediaType"] as? String
        let type = declared ?? response.headers.first(name: "Content-Type")?.split(separator: ";").first.map(String.init) ?? ""
        return (data, digest, type)
    }

    /// A config whose os and architecture are not the platform's is refused, as docker does.
    static func check(_ platform: String, config: Data, ref: ImageReference) throws {
        let parts = platform.split(separator: "/").map(String.init)
        let json = (try? JSONSerialization.jsonObject(with: config)) as? [String: Any] ?? [:]
        let os = json["os"] as? String ?? "", arch = json["architecture"] as? String ?? ""
        guard parts.count >= 2, os == parts[0], arch == parts[1] else {
            throw RegistryError("\(ref): the image is \(os)/\(arch), which does not match the platform \(platform)", notFound: true)
        }
    }

    /// The index entry for `platform` (`os/arch[/variant]`).
    static func select(_ platform: String, from data: Data, ref: ImageReference) throws -> String {
        let parts = platform.split(separator: "/").map(String.init)
        guard parts.count >= 2 else { throw RegistryError("platform \(platform): os/arch[/variant]") }
        guard let index = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let entries = index["manifests"] as? [[String: Any]] else {
            throw RegistryError("\(ref): an index without manifests")
        }
        var offered: [String] = []
        for e in entries {
            let p = e["platform"] as? [String: Any] ?? [:]
            let os = p["os"] as? String ?? "", arch = p["architecture"] as? String ?? "", variant = p["variant"] as? String
            offered.append([os, arch, variant].compactMap { $0 }.joined(separator: "/"))
            if os == parts[0] && arch == parts[1] && (parts.count < 3 || variant == parts[2]), let digest = e["digest"] as? String {
                return digest
            }
        }
        throw RegistryError("\(ref): no \(platform) image in the index (it has \(offered.joined(separator: ", ")))", notFound: true)
    }

    /// The blobs, at most `options.concurrency` at once.
    private func fetchAll(_ blobs: [Descriptor], ref: ImageReference, t: Transport, scope: String, into store: ContentStore,
                          progress: @escaping @Sendable (PullProgress) -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = blobs[...]
            for _ in 0..<max(1, options.concurrency) {
                guard let b = pending.popFirst() else { break }
                group.addTask { try await self.fetch(b, ref: ref, t: t, scope: scope, into: store, progress: progress) }
            }
            while try await group.next() != nil {
                if let b = pending.popFirst() { group.addTask { try await self.fetch(b, ref: ref, t: t, scope: scope, into: store, progress: progress) } }
            }
        }
    }

    /// One blob into the store: resumed from its partial file with Range, verified, named.
    private func fetch(_ d: Descriptor, ref: ImageReference, t: Transport, scope: String, into store: ContentStore,
                       progress: @escaping @Sendable (PullProgress) -> Void) async throws {
        let writer = try BlobWriter(store: store, digest: d.digest, size: d.size)
        var headers: [(String, String)] = []
        if writer.written > 0 && writer.written < d.size { headers.append(("Range", "bytes=\(writer.written)-")) }
        let response = try await t.send(.GET, "/v2/\(ref.path)/blobs/\(d.digest)", scope: scope, headers: headers, timeout: .hours(6))
        switch response.status {
        case .partialContent: break
        case .ok: if writer.written > 0 { try writer.restart() }
        default:
            let body = try? await response.body.collect(upTo: 1 << 16)
            throw RegistryError("\(ref): blob \(d.digest): \(Registry.errorText(response.status, body))", notFound: response.status == .notFound)
        }
        progress(PullProgress(digest: d.digest, done: writer.written, total: d.size))
        var reported = writer.written
        for try await chunk in response.body {
            try chunk.withUnsafeReadableBytes { try writer.append($0) }
            if writer.written - reported >= 1 << 20 || writer.written == d.size {
                reported = writer.written
                progress(PullProgress(digest: d.digest, done: writer.written, total: d.size))
            }
        }
        do { try writer.commit() } catch { throw RegistryError("\(ref): \(error)") }
    }

    /// A registry's error body (`{"errors":[{"code","message"}]}`) or its status.
    static func errorText(_ status: HTTPResponseStatus, _ body: ByteBuffer?) -> String {
        if let body, let json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
           let first = (json["errors"] as? [[String: Any]])?.first {
            return [first["code"] as? String, first["message"] as? String].compactMap { $0 }.joined(separator: ": ").lowercased()
        }
        return "HTTP \(status.code) \(status.reasonPhrase)"
    }
}
