import API
import CLinux
import Foundation
import ImageStore
import OCI
import Wire

/// `container.commit`: a container's changes (its overlay upper directory) as a new layer on
/// its image, overlay whiteouts turned back into `.wh.` entries, with a config that is the
/// container's (command, environment, workdir, user, labels) plus `changes`, a history entry
/// with the message and author.
extension Daemon {
    func commit(_ c: Metadata.ContainerRow, _ p: CommitParams) throws -> ImageInfo {
        let name = try p.reference.map { r -> String in
            do { return try ImageReference.normalize(r) } catch { throw APIError.params("reference: \(error)") }
        }
        let upper = containerDir(c.id) + "/upper"
        guard FileManager.default.fileExists(atPath: upper) else { throw APIError.precondition("container \(c.name) has no changes directory") }
        let image = try storedImage(manifestDigest: c.manifestDigest, name: nil)
        let pause = p.pause != false && c.status == .running
        if pause { try shim(c.id).call("pause") }
        defer { if pause { logged("resume \(c.id) after commit") { try shim(c.id).call("resume") } } }
        let work = content.root + "/ingest/commit-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try Daemon.layerTar(of: upper, into: work + "/layer.tar", staging: work + "/whiteouts")
        let diffID = try HashingSource(FileSource(path: work + "/layer.tar")).digest()
        let gz = try execute("/bin/gzip", ["-n", "-1", work + "/layer.tar"])
        guard gz.code == 0 else { throw APIError.internal("gzip: \(gz.stderr)") }
        var st = stat()
        stat(work + "/layer.tar.gz", &st)
        let layer = try storeLock.withImport { try content.ingest(FileSource(path: work + "/layer.tar.gz")) }
        let config = try Daemon.committedConfig(try content.read(image.manifest.config.digest), container: c.options, diffID: diffID, params: p)
        let configDigest = try content.ingest(data: config)
        var manifest = image.manifest
        manifest.mediaType = MediaType.manifest
        manifest.config = Descriptor(mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: Int64(config.count))
        manifest.layers.append(Descriptor(mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layer, size: Int64(st.st_size)))
        let manifestData = try JSONEncoder().encode(manifest)
        let digest = try content.ingest(data: manifestData)
        let recorded = name ?? digest
        try metadata.putImage(c.namespace, name: recorded, manifestDigest: digest, labels: [:],
                              event: EventDraft(namespace: c.namespace, type: .image, action: .import, id: digest, attributes: ["name": recorded, "container": c.id]))
        return imageInfo(try storedImage(manifestDigest: digest, name: recorded),
                         Metadata.ImageRow(namespace: c.namespace, name: recorded, manifestDigest: digest, created: Timestamp.now(), labels: [:]))
    }

    /// GNU tar of the upper directory without overlay's whiteouts (0/0 character devices) and
    /// opaque markers, then the OCI whiteout files for them (`.wh.NAME`, `.wh..wh..opq`).
    static func layerTar(of upper: String, into tar: String, staging: String) throws {
        var whiteouts: [String] = [], opaque: [String] = []
        let walker = FileManager.default.enumerator(atPath: upper)
        while let relative = walker?.nextObject() as? String {
            var st = stat()
            guard lstat(upper + "/" + relative, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFCHR && st.st_rdev == 0 { whiteouts.append(relative) }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                var value = [UInt8](repeating: 0, count: 2)
                if lgetxattr(upper + "/" + relative, "trusted.overlay.opaque", &value, 2) == 1 && value[0] == UInt8(ascii: "y") { opaque.append(relative) }
            }
        }
        let excluded = staging + ".exclude"
        try whiteouts.map { "./" + $0 }.joined(separator: "\n").appending("\n").write(toFile: excluded, atomically: true, encoding: .utf8)
        let base = try execute("/bin/tar", ["--numeric-owner", "--xattrs", "--xattrs-exclude=trusted.*", "-C", upper, "-X", excluded, "-cf", tar, "."])
        guard base.code == 0 else { throw APIError.internal("tar of the container's changes: \(base.stderr)") }
        let markers = whiteouts.map { (($0 as NSString).deletingLastPathComponent as NSString).appendingPathComponent(".wh." + ($0 as NSString).lastPathComponent) }
            + opaque.map { ($0 as NSString).appendingPathComponent(".wh..wh..opq") }
        guard !markers.isEmpty else { return }
        for m in markers {
            try FileManager.default.createDirectory(atPath: staging + "/" + (m as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: staging + "/" + m, contents: nil) else {
                throw APIError.internal("whiteout marker \(m): could not be created in the staging directory")
            }
        }
        let added = try execute("/bin/tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", staging, "--no-recursion", "-rf", tar] + markers.map { "./" + $0 })
        guard added.code == 0 else { throw APIError.internal("tar of the whiteouts: \(added.stderr)") }
    }

    /// The image's config (every field kept) with the container's run settings, the changes,
    /// the new layer's diff ID and a history entry.
    static func committedConfig(_ base: Data, container o: CreateOptions, diffID: String, params p: CommitParams) throws -> Data {
        var config = try JSONValue.parse(Array(base))
        guard case .object = config else { throw APIError.internal("the image's config is not an object") }
        var run = config["config"] ?? .object([])
        if case .null = run { run = .object([]) }
        if let cmd = o.cmd { run = run.setting("Cmd", .strings(cmd)) }
        if let e = o.entrypoint { run = run.setting("Entrypoint", .strings(e)) }
        if let env = o.env { run = run.setting("Env", .strings(BundleBuilder.mergeEnv(CommitChange.strings(run["Env"]), env))) }
        if let w = o.workdir { run = run.setting("WorkingDir", .string(w)) }
        if let u = o.user { run = run.setting("User", .string(u)) }
        for change in p.changes ?? [] { run = try CommitChange.apply(change, to: run) }
        let rootfs = config["rootfs"] ?? .object([("type", .string("layers"))])
        let now = Timestamp.now()
        var entry: [(String, JSONValue)] = [("created", .string(now)), ("created_by", .string("sctr commit"))]
        if let m = p.message { entry.append(("comment", .string(m))) }
        if let a = p.author { entry.append(("author", .string(a))); config = config.setting("author", .string(a)) }
        config = config.setting("config", run)
            .setting("rootfs", rootfs.setting("diff_ids", .array((rootfs["diff_ids"]?.array ?? []) + [.string(diffID)])))
            .setting("history", .array((config["history"]?.array ?? []) + [.object(entry)]))
            .setting("created", .string(now))
        return Data(config.serialized.utf8)
    }
}

/// docker commit's `--change` instructions: CMD, ENTRYPOINT (JSON or shell form), ENV, WORKDIR,
/// USER, LABEL, EXPOSE, STOPSIGNAL.
enum CommitChange {
    static func apply(_ text: String, to run: JSONValue) throws -> JSONValue {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let keyword = String(trimmed.prefix { !$0.isWhitespace }).uppercased()
        let rest = trimmed.dropFirst(keyword.count).trimmingCharacters(in: .whitespaces)
        func words() -> [String] {
            if rest.hasPrefix("["), let list = (try? JSONValue.parse(rest))?.array, list.allSatisfy({ $0.string != nil }) { return list.compactMap(\.string) }
            return ["/bin/sh", "-c", rest]
        }
        let pairs: [(String, String)] = rest.split(separator: " ").map { item in
            let kv = item.split(separator: "=", maxSplits: 1).map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            return (kv[0], kv.count > 1 ? kv[1] : "")
        }
        switch keyword {
        case "CMD": return run.setting("Cmd", .strings(words()))
        case "ENTRYPOINT": return run.setting("Entrypoint", .strings(words()))
        case "ENV": return run.setting("Env", .strings(BundleBuilder.mergeEnv(strings(run["Env"]), pairs.map { "\($0.0)=\($0.1)" })))
        case "WORKDIR": return run.setting("WorkingDir", .string(rest))
        case "USER": return run.setting("User", .string(rest))
        case "STOPSIGNAL": return run.setting("StopSignal", .string(rest))
        case "LABEL": return run.setting("Labels", pairs.reduce(objectOrEmpty(run["Labels"])) { $0.setting($1.0, .string($1.1)) })
        case "EXPOSE":
            let ports = rest.split(separator: " ").map { $0.contains("/") ? String($0) : $0 + "/tcp" }
            return run.setting("ExposedPorts", ports.reduce(objectOrEmpty(run["ExposedPorts"])) { $0.setting($1, .object([])) })
        default: throw APIError.params("changes: \(ReferenceError.shown(text)): CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE or STOPSIGNAL")
        }
    }

    static func strings(_ value: JSONValue?) -> [String] { value?.array?.compactMap(\.string) ?? [] }

    static func objectOrEmpty(_ value: JSONValue?) -> JSONValue {
        if let value, case .object = value { return value }
        return .object([])
    }
}
