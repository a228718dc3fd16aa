import API
import OCI
import Foundation

/// Named volumes: a directory per volume and namespace, kept until removed.
extension Daemon {
    /// Creates the volume if it does not exist (its record and directory); its info either way.
    @discardableResult
    func ensureVolume(_ ns: String, _ name: String, labels: [String: String] = [:]) throws -> VolumeInfo {
        try Validate.name(name, field: "volume name")
        try Validate.labels(labels)
        try FileManager.default.createDirectory(atPath: volumeDir(ns, name), withIntermediateDirectories: true)
        _ = try metadata.putVolume(ns, name, labels: labels, event: EventDraft(namespace: ns, type: .volume, action: .create, id: name))
        return try volume(ns, name)
    }

    func volume(_ ns: String, _ name: String) throws -> VolumeInfo {
        guard let v = try metadata.volumes(ns).first(where: { $0.name == name }) else { throw APIError.notFound("no such volume: \(ReferenceError.shown(name))") }
        return volumeInfo(v)
    }

    func volumeInfo(_ v: Metadata.VolumeRow) -> VolumeInfo {
        VolumeInfo(name: v.name, namespace: v.namespace, mountpoint: volumeDir(v.namespace, v.name), created: v.created, labels: v.labels)
    }

    func removeVolume(_ ns: String, _ name: String) throws {
        if let user = try metadata.containers(ns).first(where: { c in (c.options.volumes ?? []).contains { (try? VolumeSpec(parsing: $0))?.source == name } }) {
            throw APIError.conflict("volume \(name) is used by container \(user.name)")
        }
        guard try metadata.removeVolume(ns, name, event: EventDraft(namespace: ns, type: .volume, action: .destroy, id: name)) else {
            throw APIError.notFound("no such volume: \(ReferenceError.shown(name))")
        }
        logged("remove volume \(name)'s directory") {
            try FileManager.default.removeItem(atPath: (volumeDir(ns, name) as NSString).deletingLastPathComponent)
        }
    }
}
