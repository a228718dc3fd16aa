/// The OCI image spec's documents, as the importer reads and writes them.
public enum MediaType {
    public static let index = "application/vnd.oci.image.index.v1+json"
    public static let manifest = "application/vnd.oci.image.manifest.v1+json"
    public static let config = "application/vnd.oci.image.config.v1+json"
    public static let layer = "application/vnd.oci.image.layer.v1.tar"
    public static let layerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
}

/// The os/architecture an image or manifest is for: what import selects on.
public struct Platform: Codable, Sendable, Equatable {
    public var architecture: String
    public var os: String
    public var variant: String?
    public init(architecture: String, os: String, variant: String? = nil) {
        self.architecture = architecture; self.os = os; self.variant = variant
    }
}

/// A pointer to a blob: media type, digest, size (checked on ingest).
public struct Descriptor: Codable, Sendable, Equatable {
    public var mediaType: String
    public var digest: String
    public var size: Int64
    public var platform: Platform?
    public var annotations: [String: String]?
    public init(mediaType: String, digest: String, size: Int64, platform: Platform? = nil, annotations: [String: String]? = nil) {
        self.mediaType = mediaType; self.digest = digest; self.size = size; self.platform = platform; self.annotations = annotations
    }
}

/// index.json, or a manifest list: manifests per platform.
public struct ImageIndex: Codable, Sendable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [Descriptor]
    public init(manifests: [Descriptor]) { schemaVersion = 2; mediaType = "application/vnd.oci.image.index.v1+json"; self.manifests = manifests }
}

/// One image in a docker-archive's manifest.json (docker save's layout).
public struct DockerArchiveEntry: Codable, Sendable {
    public var Config: String
    public var RepoTags: [String]?
    public var Layers: [String]
    public init(Config: String, RepoTags: [String]?, Layers: [String]) { self.Config = Config; self.RepoTags = RepoTags; self.Layers = Layers }
}

/// One platform's image: its config blob and its layers, bottom first.
public struct ImageManifest: Codable, Sendable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public init(config: Descriptor, layers: [Descriptor]) {
        schemaVersion = 2; mediaType = MediaType.manifest; self.config = config; self.layers = layers
    }
}

/// The image configuration: what a container made from the image runs, and its layers' diff IDs.
public struct ImageConfiguration: Codable, Sendable {
    /// The part a container inherits (docker's key spelling).
    public struct RunConfig: Codable, Sendable {
        public var User: String?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var WorkingDir: String?
        public var Volumes: [String: [String: String]]?
        /// `"80/tcp": {}`: the ports `-P` publishes.
        public var ExposedPorts: [String: [String: String]]?
        public var Labels: [String: String]?
        public var StopSignal: String?
        public var Healthcheck: HealthcheckConfig?
        public init() {}
    }
    /// docker's HEALTHCHECK: `Test` is ["NONE"], ["CMD", args…] or ["CMD-SHELL", script];
    /// durations in nanoseconds.
    public struct HealthcheckConfig: Codable, Sendable {
        public var Test: [String]?
        public var Interval: Int64?
        public var Timeout: Int64?
        public var StartPeriod: Int64?
        public var Retries: Int?
    }
    /// Diff IDs: digests of the uncompressed layers, checked as they unpack.
    public struct RootFS: Codable, Sendable {
        public var type: String
        public var diff_ids: [String]
        public init(type: String, diff_ids: [String]) { self.type = type; self.diff_ids = diff_ids }
    }
    /// One step that made the image (docker's `history`).
    public struct History: Codable, Sendable {
        public var created: String?
        public var created_by: String?
        public var comment: String?
        public var author: String?
        public var empty_layer: Bool?
        public init() {}
    }
    public var architecture: String?
    public var os: String?
    public var created: String?
    public var author: String?
    public var config: RunConfig?
    public var rootfs: RootFS
    public var history: [History]?

    public init(architecture: String?, os: String?, created: String?, config: RunConfig?, rootfs: RootFS, history: [History]?) {
        self.architecture = architecture; self.os = os; self.created = created; self.config = config; self.rootfs = rootfs; self.history = history
    }
}
