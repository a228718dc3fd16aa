import Foundation
import Registry

/// Where the daemon keeps things and which programs it runs; every path overridable so tests
/// run private daemons side by side.
public struct DaemonConfig: Sendable {
    /// Content, snapshots, container upper dirs and logs, volumes, metadata.db.
    public var root = "/var/lib/scontainerd"
    /// Socket, bundles (mounted rootfs), shim state, the runtime's state.
    public var state = "/run/scontainerd"
    public var socket: String?
    public var shim: String
    public var runtime: String
    /// "overlay" (falls back to copying when the mount fails) or "copy".
    public var snapshotter = "overlay"
    /// The most one image layer may unpack to (a gzip bomb stops here).
    public var maxLayerBytes = 16 << 30
    /// Imports stop while the store's disk has less than this free.
    public var minFreeBytes = 256 << 20
    /// A static init for `--init` containers (bound in read-only): Debian's tini-static
    /// (docker.io's docker-init) or catatonit (podman's).
    public var initBinary: String? = ["/usr/bin/tini-static", "/usr/bin/catatonit", "/usr/libexec/podman/catatonit"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Registries: insecure hosts, certs.d, docker's config.json for credentials, mirrors.
    public var registry = RegistryOptions()

    /// Where the CNI plugins are (Debian's containernetworking-plugins: /usr/lib/cni).
    public var cniPluginDirs = ["/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni"]

    public var socketPath: String { socket ?? state + "/scontainerd.sock" }

    public init() {
        let dir = DaemonConfig.ownDirectory()
        shim = dir + "/sshim"
        runtime = dir + "/srunc"
    }

    /// The directory of the running binary: sshim and srunc are installed beside it.
    static func ownDirectory() -> String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "/usr/local/bin/scontainerd"
        return (exe as NSString).deletingLastPathComponent
    }
}
