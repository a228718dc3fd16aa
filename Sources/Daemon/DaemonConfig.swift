import Foundation

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

    public var socketPath: String { socket ?? state + "/scontainerd.sock" }

    public init() {
        let dir = DaemonConfig.ownDirectory()
        shim = dir + "/sshim"
        runtime = dir + "/srunc"
    }

    /// Parses `--root --state --socket --shim --runtime`.
    public init(arguments: [String]) throws {
        self.init()
        var args = arguments[...]
        while let flag = args.popFirst() {
            if flag == "--snapshotter" {
                guard let value = args.popFirst(), ["overlay", "copy"].contains(value) else { throw RPCError.params("--snapshotter overlay|copy") }
                snapshotter = value
                continue
            }
            guard let value = args.popFirst(), value.hasPrefix("/") else { throw RPCError.params("\(flag) needs an absolute path") }
            switch flag {
            case "--root": root = value
            case "--state": state = value
            case "--socket": socket = value
            case "--shim": shim = value
            case "--runtime": runtime = value
            default: throw RPCError.params("unknown flag \(flag)")
            }
        }
    }

    /// The directory of the running binary: sshim and srunc are installed beside it.
    static func ownDirectory() -> String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "/usr/local/bin/scontainerd"
        return (exe as NSString).deletingLastPathComponent
    }
}
