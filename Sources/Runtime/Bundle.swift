@preconcurrency import Glibc
import OCI

/// An OCI bundle on disk: its absolute directory, its validated config and its rootfs path.
public struct Bundle: Sendable {
    public let path: String
    public let spec: Spec
    public let rootfs: String
    /// config.json as read: `spec` decodes from exactly these bytes (state.json reuses them).
    public let configBytes: [UInt8]

    /// Reads and validates `<path>/config.json`; every rejection names the field at fault.
    public init(path: String) throws {
        let dir = Files.absolute(path)
        guard let bytes = Files.read(dir + "/config.json") else {
            throw RuntimeError.sys("open \(dir)/config.json")
        }
        let spec = try JSON.decode(Spec.self, from: bytes, what: "config.json")
        try Bundle.validate(spec)
        let rootPath = spec.root!.path
        let rootfs = Files.clean(rootPath.hasPrefix("/") ? rootPath : dir + "/" + rootPath)
        // A symlinked rootfs could point anywhere by the time it is mounted: runc refuses it.
        var st = stat()
        if lstat(rootfs, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK {
            throw RuntimeError("invalid rootfs: \(rootfs) is a symlink")
        }
        guard Files.isDirectory(rootfs) else {
            throw RuntimeError("rootfs (\(rootfs)) does not exist or is not a directory")
        }
        self.path = dir
        self.spec = spec
        self.rootfs = rootfs
        self.configBytes = bytes
    }

    static let namespaceTypes: Set<String> = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]

    /// Semantic checks Codable cannot express, in the order a reader of config.json meets them.
    static func validate(_ spec: Spec) throws {
        guard spec.ociVersion.hasPrefix("1.") else {
            throw RuntimeError("config.json: ociVersion \"\(spec.ociVersion)\" is not a supported 1.x version")
        }
        guard let root = spec.root, !root.path.isEmpty else { throw RuntimeError("config.json: root.path is required") }
        guard let process = spec.process else { throw RuntimeError("config.json: process is required") }
        guard let args = process.args, !args.isEmpty, !args[0].isEmpty else {
            throw RuntimeError("config.json: process.args must not be empty")
        }
        // runc and crun refuse a profile the host cannot apply; srunc refuses it at create.
        if let profile = process.apparmorProfile, !profile.isEmpty, Files.readString("/sys/module/apparmor/parameters/enabled")?.hasPrefix("Y") != true {
            throw RuntimeError("config.json: process.apparmorProfile \"\(profile)\" is set, but AppArmor is not enabled on this host")
        }
        guard process.cwd.hasPrefix("/") else {
            throw RuntimeError("config.json: process.cwd \"\(process.cwd)\" must be an absolute path")
        }
        for (i, m) in (spec.mounts ?? []).enumerated() where !m.destination.hasPrefix("/") {
            throw RuntimeError("config.json: mounts[\(i)].destination \"\(m.destination)\" must be an absolute path")
        }
        var seen = Set<String>()
        for (i, ns) in (spec.linux?.namespaces ?? []).enumerated() {
            guard namespaceTypes.contains(ns.type) else {
                throw RuntimeError("config.json: linux.namespaces[\(i)].type \"\(ns.type)\" is not a namespace type")
            }
            guard seen.insert(ns.type).inserted else {
                throw RuntimeError("config.json: linux.namespaces: duplicate namespace \"\(ns.type)\"")
            }
            if let p = ns.path, !Files.exists(p) {
                throw RuntimeError("config.json: linux.namespaces[\(i)].path \(p) does not exist")
            }
        }
        let hasUserNS = seen.contains("user")
        if !hasUserNS && (!(spec.linux?.uidMappings ?? []).isEmpty || !(spec.linux?.gidMappings ?? []).isEmpty) {
            throw RuntimeError("config.json: linux.uidMappings/gidMappings need a user namespace")
        }
        if hasUserNS, spec.linux?.namespaces?.first(where: { $0.type == "user" })?.path == nil,
           (spec.linux?.uidMappings ?? []).isEmpty || (spec.linux?.gidMappings ?? []).isEmpty {
            throw RuntimeError("config.json: a new user namespace needs linux.uidMappings and linux.gidMappings")
        }
        if let hostname = spec.hostname, !hostname.isEmpty, !seen.contains("uts") {
            throw RuntimeError("config.json: hostname needs a new uts namespace")
        }
        for (i, r) in (process.rlimits ?? []).enumerated() {
            guard Rlimits.resource(named: r.type) != nil else {
                throw RuntimeError("config.json: process.rlimits[\(i)].type \"\(r.type)\" is not an rlimit")
            }
            if r.soft > r.hard { throw RuntimeError("config.json: process.rlimits[\(i)]: soft limit above hard limit") }
        }
        try Capabilities.validate(process.capabilities)
        if let seccomp = spec.linux?.seccomp { try SeccompFilter.validate(seccomp) }
        for (i, d) in (spec.linux?.devices ?? []).enumerated() {
            guard ["c", "u", "b", "p"].contains(d.type) else {
                throw RuntimeError("config.json: linux.devices[\(i)].type \"\(d.type)\" must be c, u, b or p")
            }
            guard d.path.hasPrefix("/dev/") else {
                throw RuntimeError("config.json: linux.devices[\(i)].path \"\(d.path)\" must be under /dev")
            }
        }
        if let p = spec.linux?.rootfsPropagation, !p.isEmpty, MountOptions.propagation[p] == nil {
            throw RuntimeError("config.json: linux.rootfsPropagation \"\(p)\" is not a propagation mode")
        }
        for key in (spec.linux?.sysctl ?? [:]).keys where key.contains("/") || key.contains("..") {
            throw RuntimeError("config.json: linux.sysctl key \"\(key)\" is invalid")
        }
    }
}
