@preconcurrency import Glibc
import CLinux

/// The runtime-spec features document (`srunc features`): what srunc implements, less what this
/// host's kernel lacks (no time namespace, no mount_setattr, no cgroup hierarchy of a version).
/// The spec says features SHOULD be fixed at build time; a caller asking whether a config will
/// run here is better served by the answer for here, so the host narrows the list.
public enum Features {
    struct Document: Encodable {
        let ociVersionMin = "1.0.0"
        let ociVersionMax = "1.2.0"
        let hooks = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
        let mountOptions: [String]
        let linux: LinuxFeatures
        let annotations: [String: String]
    }
    struct LinuxFeatures: Encodable {
        let namespaces: [String]
        let capabilities: [String]
        let cgroup: [String: Bool]
        let seccomp: SeccompFeatures
        let apparmor = ["enabled": false]
        let selinux = ["enabled": false]
        let intelRdt = ["enabled": false]
        let mountExtensions: [String: [String: Bool]]
    }
    struct SeccompFeatures: Encodable {
        let enabled = true
        let actions = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                       "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"]
        let operators = SeccompFilter.ops.keys.sorted()
        let archs: [String]
        let knownFlags = SeccompFilter.flags.keys.sorted()
        let supportedFlags = SeccompFilter.flags.keys.sorted()
    }

    public static func json(version: String) throws -> [UInt8] {
        let archs = ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
                     "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390X", "SCMP_ARCH_RISCV64"].filter { SeccompFilter.architecture($0) != 0 }
        var caps: [String] = []
        for c in 0...Capabilities.last {
            guard let name = cap_to_name(cap_value_t(c)) else { continue }
            caps.append(String(cString: name).uppercased())
            cap_free(name)
        }
        let options = (Array(MountOptions.setting.keys) + Array(MountOptions.clearing.keys) + Array(MountOptions.propagation.keys)
                       + Array(MountOptions.ignored) + Array(MountOptions.idmapping)).sorted()
        let host = CgroupMount.hierarchies()
        let cgroup = ["v1": host.contains { $0.fsType == "cgroup" }, "v2": host.contains { $0.fsType == "cgroup2" },
                      "systemd": false, "systemdUser": false, "rdma": false]
        let namespaces = ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"].filter {
            access("/proc/self/ns/" + ($0 == "mount" ? "mnt" : $0 == "network" ? "net" : $0), F_OK) == 0
        }
        // mount_setattr on no mount: EBADF where the kernel has it, ENOSYS where not.
        let idmap = cl_mount_setattr_idmap(-1, -1, 0) == 0 || errno != ENOSYS
        let doc = Document(mountOptions: options.filter { idmap || !MountOptions.idmapping.contains($0) },
                           linux: LinuxFeatures(namespaces: namespaces, capabilities: caps, cgroup: cgroup,
                                                seccomp: SeccompFeatures(archs: archs),
                                                mountExtensions: ["idmap": ["enabled": idmap]]),
                           annotations: ["io.github.srunc.version": version, "io.github.srunc.libseccomp.static": "true"])
        return try JSON.encode(doc, pretty: true) + [0x0a]
    }
}
