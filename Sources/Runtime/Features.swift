@preconcurrency import Glibc
import CLinux

/// The runtime-spec features document (`srunc features`): only what srunc really implements.
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
        let namespaces = ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"]
        let capabilities: [String]
        let cgroup = ["v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false]
        let seccomp: SeccompFeatures
        let apparmor = ["enabled": false]
        let selinux = ["enabled": false]
        let intelRdt = ["enabled": false]
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
        let doc = Document(mountOptions: options,
                           linux: LinuxFeatures(capabilities: caps, seccomp: SeccompFeatures(archs: archs)),
                           annotations: ["io.github.srunc.version": version, "io.github.srunc.libseccomp.static": "true"])
        return try JSON.encode(doc, pretty: true) + [0x0a]
    }
}
