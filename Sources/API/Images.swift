import OCI

/// An image as lists report it.
public struct ImageInfo: Codable, Sendable {
    public var name: String
    public var namespace: String
    /// The manifest's digest: the image's identity.
    public var digest: String
    public var configDigest: String
    /// Compressed size of the layers.
    public var size: Int64
    public var layers: Int
    public var created: String?
    public var labels: [String: String]
    public init(name: String, namespace: String, digest: String, configDigest: String, size: Int64, layers: Int, created: String?, labels: [String: String]) {
        self.name = name; self.namespace = namespace; self.digest = digest; self.configDigest = configDigest
        self.size = size; self.layers = layers; self.created = created; self.labels = labels
    }
}

/// An image with its manifest and config documents.
public struct ImageDetail: Codable, Sendable {
    public var image: ImageInfo
    public var manifest: ImageManifest
    public var config: ImageConfiguration
    public init(image: ImageInfo, manifest: ImageManifest, config: ImageConfiguration) { self.image = image; self.manifest = manifest; self.config = config }
}

public struct ImageList: Codable, Sendable { public var images: [ImageInfo]; public init(images: [ImageInfo]) { self.images = images } }

public struct ImportParams: Codable, Sendable {
    /// An OCI image layout directory, an oci-archive or a docker-archive, on the daemon's host.
    public var path: String
    /// Labels for every image imported.
    public var labels: [String: String]?
    /// The name for the image (docker's `import … REPOSITORY[:TAG]`): the source must hold one.
    public var name: String?
    public init(path: String, labels: [String: String]? = nil, name: String? = nil) { self.path = path; self.labels = labels; self.name = name }
}

/// How far an import is.
public struct ImportProgress: Notice {
    public static let key = NoticeKey.progress
    public var message: String
    /// Layers done and in all, when the message is about a layer.
    public var current: Int?
    public var total: Int?
    /// A pull's blob and its bytes so far and in all.
    public var digest: String?
    public var bytes: Int64?
    public var totalBytes: Int64?
    public init(message: String, current: Int?, total: Int?) { self.message = message; self.current = current; self.total = total }
}

/// An image from a registry (`image.pull`).
public struct PullParams: Codable, Sendable {
    /// `name[:tag|@digest]`, normalized as docker's (`busybox` is docker.io/library/busybox:latest).
    public var reference: String
    /// `os/arch[/variant]` to take from an index (default linux/amd64).
    public var platform: String?
    public init(reference: String, platform: String? = nil) { self.reference = reference; self.platform = platform }
}

/// An image (or volume) by name; images also by digest or unique digest prefix.
public struct NameParams: Codable, Sendable { public var name: String; public init(name: String) { self.name = name } }
public struct NameResult: Codable, Sendable { public var name: String; public init(name: String) { self.name = name } }

public struct TagParams: Codable, Sendable {
    public var source: String
    public var target: String
    public init(source: String, target: String) { self.source = source; self.target = target }
}

public struct ListParams: Codable, Sendable {
    public var filters: Filters?
    public init(filters: Filters? = nil) { self.filters = filters }
    public static let imageFilterKeys = ["label", "reference"]
    public static let volumeFilterKeys = ["label", "name"]
}

/// A named volume.
public struct VolumeInfo: Codable, Sendable {
    public var name: String
    public var namespace: String
    public var mountpoint: String
    public var created: String
    public var labels: [String: String]
    public init(name: String, namespace: String, mountpoint: String, created: String, labels: [String: String]) {
        self.name = name; self.namespace = namespace; self.mountpoint = mountpoint; self.created = created; self.labels = labels
    }
}

public struct VolumeCreateParams: Codable, Sendable {
    public var name: String
    public var labels: [String: String]?
    public init(name: String, labels: [String: String]? = nil) { self.name = name; self.labels = labels }
}

public struct VolumeList: Codable, Sendable { public var volumes: [VolumeInfo]; public init(volumes: [VolumeInfo]) { self.volumes = volumes } }

/// Credentials for a registry, checked against it and stored in docker's config.json format.
public struct LoginParams: Codable, Sendable {
    /// `host[:port]`; `docker.io` for Docker Hub.
    public var registry: String
    public var username: String
    public var password: String
    public init(registry: String, username: String, password: String) { self.registry = registry; self.username = username; self.password = password }
}

public struct LogoutParams: Codable, Sendable {
    public var registry: String
    public init(registry: String) { self.registry = registry }
}

/// An image to a registry (`image.push`).
public struct PushParams: Codable, Sendable {
    /// A name of a stored image, which says where it goes (`registry/path:tag`).
    public var reference: String
    public init(reference: String) { self.reference = reference }
}

/// Images to an archive on the daemon's host (`image.save`, docker's `save`).
public struct SaveParams: Codable, Sendable {
    public var names: [String]
    /// Absolute; written whole or not at all.
    public var hostPath: String
    /// `docker-archive` (default, as docker save) or `oci-archive`.
    public var format: String?
    public init(names: [String], hostPath: String, format: String? = nil) { self.names = names; self.hostPath = hostPath; self.format = format }
}
