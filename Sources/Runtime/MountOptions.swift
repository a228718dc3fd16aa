@preconcurrency import Glibc

/// The mount(8)-style option words of `mounts[].options`, split into mount(2) flags,
/// propagation changes (applied in a second call, as the kernel requires) and fs data.
struct MountOptions: Equatable {
    var flags: UInt = 0
    var propagation: [UInt] = []
    var data: [String] = []
    /// `rro`: read-only, and every mount below too (mount_setattr with AT_RECURSIVE).
    var recursiveReadOnly = false
    var isBind: Bool { flags & UInt(MS_BIND) != 0 }

    static let setting: [String: UInt] = [
        "ro": UInt(MS_RDONLY), "nosuid": UInt(MS_NOSUID), "nodev": UInt(MS_NODEV), "noexec": UInt(MS_NOEXEC),
        "sync": UInt(MS_SYNCHRONOUS), "dirsync": UInt(MS_DIRSYNC), "remount": UInt(MS_REMOUNT),
        "mand": UInt(MS_MANDLOCK), "noatime": UInt(MS_NOATIME), "nodiratime": UInt(MS_NODIRATIME),
        "bind": UInt(MS_BIND), "rbind": UInt(MS_BIND | MS_REC), "relatime": UInt(MS_RELATIME),
        "strictatime": UInt(MS_STRICTATIME), "lazytime": UInt(MS_LAZYTIME), "silent": UInt(MS_SILENT),
    ]
    static let clearing: [String: UInt] = [
        "rw": UInt(MS_RDONLY), "suid": UInt(MS_NOSUID), "dev": UInt(MS_NODEV), "exec": UInt(MS_NOEXEC),
        "async": UInt(MS_SYNCHRONOUS), "nomand": UInt(MS_MANDLOCK), "atime": UInt(MS_NOATIME),
        "diratime": UInt(MS_NODIRATIME), "norelatime": UInt(MS_RELATIME),
        "nostrictatime": UInt(MS_STRICTATIME), "loud": UInt(MS_SILENT),
    ]
    static let propagation: [String: UInt] = [
        "private": UInt(MS_PRIVATE), "rprivate": UInt(MS_PRIVATE | MS_REC), "shared": UInt(MS_SHARED),
        "rshared": UInt(MS_SHARED | MS_REC), "slave": UInt(MS_SLAVE), "rslave": UInt(MS_SLAVE | MS_REC),
        "unbindable": UInt(MS_UNBINDABLE), "runbindable": UInt(MS_UNBINDABLE | MS_REC),
    ]
    /// runc-specific words that are not mount(2) data; accepted and ignored.
    static let ignored: Set<String> = ["defaults", "tmpcopyup"]
    /// Idmapped bind mounts (see IdmappedMount): srunc's words, not mount(2) data.
    static let idmapping: Set<String> = ["idmap", "ridmap"]

    init(_ words: [String]) {
        for w in words {
            if w == "rro" { recursiveReadOnly = true; flags |= UInt(MS_RDONLY) }
            else if let f = MountOptions.setting[w] { flags |= f }
            else if let f = MountOptions.clearing[w] { flags &= ~f }
            else if let p = MountOptions.propagation[w] { propagation.append(p) }
            else if !MountOptions.ignored.contains(w) && !MountOptions.idmapping.contains(w) && !w.hasPrefix("x-") { data.append(w) }
        }
    }
}
