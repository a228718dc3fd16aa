/// The protocol's version: 2 is the typed API (namespaces, event sequence numbers, notices with ids).
public let protocolVersion = 2

/// No params, or no result: `{}` (and, decoded strictly, nothing else).
public struct Empty: Codable, Sendable, Equatable {
    public init() {}
    /// Asks for a keyed container so that a strict decoder sees, and refuses, any field.
    public init(from decoder: Decoder) throws { _ = try decoder.container(keyedBy: NoKeys.self) }
    public func encode(to encoder: Encoder) throws { _ = encoder.container(keyedBy: NoKeys.self) }
    enum NoKeys: CodingKey {}
}

public struct VersionInfo: Codable, Sendable {
    public var version: String
    public var `protocol`: Int
    public init(version: String, protocol: Int) { self.version = version; self.protocol = `protocol` }
}

public struct SystemInfo: Codable, Sendable {
    public var root: String
    public var state: String
    public var runtime: String
    public var shim: String
    /// Counts in the request's namespace.
    public var namespace: String
    public var containers: Int
    public var running: Int
    public var images: Int
    public var volumes: Int
    public init(root: String, state: String, runtime: String, shim: String, namespace: String, containers: Int, running: Int, images: Int, volumes: Int) {
        self.root = root; self.state = state; self.runtime = runtime; self.shim = shim; self.namespace = namespace
        self.containers = containers; self.running = running; self.images = images; self.volumes = volumes
    }
}

public struct NamespaceList: Codable, Sendable {
    /// Every namespace that holds a container, image or volume.
    public var namespaces: [String]
    public init(namespaces: [String]) { self.namespaces = namespaces }
}

public struct WaitResult: Codable, Sendable {
    public var exitCode: Int
    public var signal: Int?
    public var oomKilled: Bool
    public init(exitCode: Int, signal: Int?, oomKilled: Bool) { self.exitCode = exitCode; self.signal = signal; self.oomKilled = oomKilled }
}

/// What `system.prune` removes besides stopped containers and unreferenced content.
public struct PruneParams: Codable, Sendable {
    /// Every image no container uses (not only those without a name of their own).
    public var all: Bool?
    /// Volumes no container uses too.
    public var volumes: Bool?
    public init(all: Bool? = nil, volumes: Bool? = nil) { self.all = all; self.volumes = volumes }
}

public struct PruneResult: Codable, Sendable {
    public var containersDeleted: [String] = []
    public var imagesDeleted: [String] = []
    public var volumesDeleted: [String] = []
    public var networksDeleted: [String] = []
    /// Bytes of content, snapshots and leftovers removed.
    public var spaceReclaimed: Int64 = 0
    public init() {}
}

/// What the store holds, in the namespace (counts) and on disk (bytes, shared content once).
public struct DiskUsage: Codable, Sendable {
    public var images: Int
    /// Bytes of blobs and unpacked layers, for every namespace (they are shared).
    public var imagesBytes: Int64
    public var containers: Int
    /// Bytes the containers wrote (their upper directories and logs).
    public var containersBytes: Int64
    public var volumes: Int
    public var volumesBytes: Int64
    /// What `system.prune --all` would free of the images' bytes: content no container uses.
    public var reclaimableImagesBytes: Int64
    public init(images: Int, imagesBytes: Int64, containers: Int, containersBytes: Int64, volumes: Int, volumesBytes: Int64, reclaimableImagesBytes: Int64) {
        self.images = images; self.imagesBytes = imagesBytes; self.containers = containers; self.containersBytes = containersBytes
        self.volumes = volumes; self.volumesBytes = volumesBytes; self.reclaimableImagesBytes = reclaimableImagesBytes
    }
}

public struct ImagePruneParams: Codable, Sendable {
    /// Every image no container uses, not only those without a name.
    public var all: Bool?
    public init(all: Bool? = nil) { self.all = all }
}
