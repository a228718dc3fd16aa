/// The state document `srunc state` prints: the OCI state plus runc's extra fields, so clients
/// written for runc (go-runc, conmon) parse it unchanged.
public struct ContainerState: Codable, Sendable, Equatable {
    public var ociVersion: String
    public var id: String
    public var pid: Int32
    public var status: String
    public var bundle: String
    public var rootfs: String
    public var created: String
    public var annotations: [String: String]?
    public var owner: String

    public init(ociVersion: String, id: String, pid: Int32, status: String, bundle: String,
                rootfs: String, created: String, annotations: [String: String]?, owner: String = "") {
        self.ociVersion = ociVersion; self.id = id; self.pid = pid; self.status = status
        self.bundle = bundle; self.rootfs = rootfs; self.created = created
        self.annotations = annotations; self.owner = owner
    }
}

/// The state hooks receive on stdin: exactly the runtime spec's state, no extras.
public struct HookState: Codable, Sendable, Equatable {
    public var ociVersion: String
    public var id: String
    public var status: String
    public var pid: Int32?
    public var bundle: String
    public var annotations: [String: String]?
    public init(ociVersion: String, id: String, status: String, pid: Int32?, bundle: String,
                annotations: [String: String]?) {
        self.ociVersion = ociVersion; self.id = id; self.status = status; self.pid = pid
        self.bundle = bundle; self.annotations = annotations
    }
}
