@preconcurrency import Glibc
import CLinux
import OCI

/// srunc run by an unprivileged user, as runc's rootless mode: a user namespace maps the
/// user (and, through the setuid newuidmap/newgidmap, its /etc/subuid ranges), state lives
/// under $XDG_RUNTIME_DIR, cgroups are used only where the user may write them, and /dev's
/// nodes are bind-mounted from the host (a user namespace may not mknod).
public enum Rootless {
    /// srunc itself runs in a user namespace other than the host's (rootless podman's, say):
    /// root there may still not mknod, mount sysfs or write the host's cgroups.
    static let inUserNamespace: Bool = {
        let map = (Files.readString("/proc/self/uid_map") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" })
        return map.count >= 3 && !(map[0] == "0" && map[1] == "0" && map[2] == "4294967295")
    }()

    /// `--rootless`: "true", "false", or "auto" (the default: rootless when not root, or root
    /// only inside a user namespace, as runc decides).
    public static func isRootless(_ flag: String?) throws -> Bool {
        switch flag ?? "auto" {
        case "auto": return geteuid() != 0 || inUserNamespace
        case "true": return true
        case "false": return false
        default: throw RuntimeError("invalid --rootless value \(flag!): true, false or auto")
        }
    }

    /// The state root when none is given: runc's /run/srunc for root; $XDG_RUNTIME_DIR/srunc
    /// for a user (a directory only they may enter), else a per-user directory in /tmp.
    public static func defaultRoot(rootless: Bool) -> String {
        // Root in a user namespace that root made (USER=root) keeps the host's directory, as in runc.
        guard rootless, geteuid() != 0 || getenv("USER").map({ String(cString: $0) }) != "root" else { return "/run/srunc" }
        if let xdg = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), !xdg.isEmpty { return xdg + "/srunc" }
        return "/tmp/srunc-\(geteuid())"
    }

    /// runc's `spec --rootless` changes: a user namespace mapping the caller to root and no
    /// network namespace of its own (a user may not make one useful), /sys bound from the host
    /// (sysfs needs its own netns), no uid=/gid= mount options (ids outside the mapping), no
    /// resources (cgroups are not the user's).
    public static func spec(from base: Spec, uid: uid_t, gid: gid_t) -> Spec {
        var s = base
        var namespaces = (s.linux?.namespaces ?? []).filter { $0.type != "network" && $0.type != "user" }
        namespaces.append(Namespace(type: "user"))
        s.linux?.namespaces = namespaces
        s.linux?.uidMappings = [IDMapping(containerID: 0, hostID: uid, size: 1)]
        s.linux?.gidMappings = [IDMapping(containerID: 0, hostID: gid, size: 1)]
        s.mounts = (s.mounts ?? []).map { m in
            if Files.clean(m.destination) == "/sys" {
                return Mount(destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"])
            }
            var m = m
            m.options = m.options?.filter { !$0.hasPrefix("uid=") && !$0.hasPrefix("gid=") }
            return m
        }
        s.linux?.resources = nil
        return s
    }

    /// Writes the init's uid and gid maps. A caller mapping only its own ids writes them itself
    /// (with setgroups denied, as the kernel requires of an unprivileged gid_map); any other
    /// unprivileged mapping goes through newuidmap/newgidmap, which check /etc/subuid.
    static func writeIDMaps(pid: pid_t, uid: [IDMapping], gid: [IDMapping]) throws {
        if geteuid() == 0 {
            try Files.write("/proc/\(pid)/uid_map", Creator.idMap(uid))
            try Files.write("/proc/\(pid)/gid_map", Creator.idMap(gid))
            return
        }
        if uid.count == 1, uid[0].hostID == geteuid(), uid[0].size == 1 {
            try Files.write("/proc/\(pid)/uid_map", Creator.idMap(uid))
        } else {
            try helper("newuidmap", pid: pid, uid)
        }
        if gid.count == 1, gid[0].hostID == getegid(), gid[0].size == 1 {
            try Files.write("/proc/\(pid)/setgroups", "deny")
            try Files.write("/proc/\(pid)/gid_map", Creator.idMap(gid))
        } else {
            try helper("newgidmap", pid: pid, gid)
        }
    }

    private static func helper(_ name: String, pid: pid_t, _ maps: [IDMapping]) throws {
        let candidates: [String] = ["/usr/bin/" + name, "/bin/" + name]
        let path = candidates.first { access($0, X_OK) == 0 }
        guard let path else { throw RuntimeError("rootless: \(name) not found (install uidmap) for mappings beyond your own id") }
        let args = [String(pid)] + maps.flatMap { [String($0.containerID), String($0.hostID), String($0.size)] }
        _ = try Lifecycle.capture(path, args)
    }
}

extension Resources {
    /// Limits that need a cgroup; device rules do not count, a user namespace already keeps
    /// its processes from making device nodes.
    var setsLimits: Bool {
        var rest = self
        rest.devices = nil
        return rest != Resources()
    }
}
