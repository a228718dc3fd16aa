import CLinux
import Foundation
import ImageStore
import OCI
import API

/// Turns an image config and create options into an OCI runtime config: the command from
/// Entrypoint/Cmd, the environment merged, the user resolved through the container's own
/// /etc/passwd and /etc/group, mounts for volumes, limits and capabilities.
struct BundleBuilder {
    let options: CreateOptions
    let image: ImageConfiguration
    let id: String
    let rootfs: String
    /// Host paths for each volume mount, resolved by the caller: (source, destination, readOnly).
    let mounts: [(String, String, Bool)]
    /// The network namespace, hostname and /etc files the daemon prepared (nil: none of it).
    var network: NetworkPlan? = nil

    func spec() throws -> Spec {
        var spec = try JSONDecoder().decode(Spec.self, from: Data(DefaultSpec.json.utf8))
        let run = image.config ?? ImageConfiguration.RunConfig()
        let entrypoint = options.entrypoint ?? run.Entrypoint ?? []
        let cmd = options.cmd ?? (options.entrypoint != nil ? [] : run.Cmd ?? [])
        let args = (options.`init` == true ? [BundleBuilder.initPath, "--"] : []) + entrypoint + cmd
        guard args.count > (options.`init` == true ? 2 : 0) else { throw APIError.params("no command: the image has no Entrypoint or Cmd, and none was given") }
        var process = spec.process!
        process.args = args
        process.terminal = options.tty == true
        process.env = BundleBuilder.mergeEnv(run.Env ?? [], options.env ?? [])
        process.cwd = options.workdir ?? (run.WorkingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/")
        guard process.cwd.hasPrefix("/") else { throw APIError.params("workdir: the image's WorkingDir \(process.cwd) is not absolute") }
        process.user = try resolveUser(options.user ?? run.User ?? "")
        let list = capabilities()
        process.capabilities = Capabilities(bounding: list, effective: list, inheritable: nil, permitted: list, ambient: nil)
        process.rlimits = nil
        // docker's default: setuid programs (su, sudo) work unless the caller says otherwise.
        process.noNewPrivileges = options.noNewPrivileges == true
        let hostname = network?.hostname ?? options.hostname ?? String(id.prefix(12))
        process.env = BundleBuilder.mergeEnv(["HOSTNAME=" + hostname] + (options.tty == true ? ["TERM=xterm"] : []), process.env ?? [])
        spec.process = process
        spec.root = Root(path: rootfs, readonly: options.readOnly == true)
        spec.hostname = hostname
        var mounts = spec.mounts ?? []
        for (source, destination, readOnly) in self.mounts {
            mounts.append(Mount(destination: destination, type: "bind", source: source, options: ["rbind", readOnly ? "ro" : "rw"]))
        }
        for (source, destination) in network?.files ?? [] {
            mounts.append(Mount(destination: destination, type: "bind", source: source, options: ["bind", "rw"]))
        }
        spec.mounts = mounts
        var linux = spec.linux ?? Linux()
        if let path = network?.namespacePath {
            linux.namespaces = (linux.namespaces ?? []).compactMap { n in
                guard n.type == "network" else { return n }
                return path.isEmpty ? nil : Namespace(type: "network", path: path)
            }
        }
        var resources = linux.resources ?? Resources()
        if let m = options.memory { resources.memory = Memory(limit: m, swap: m) }
        if let c = options.cpus {
            var cpu = resources.cpu ?? CPU()
            cpu.period = 100_000
            cpu.quota = Int64(c * 100_000)
            resources.cpu = cpu
        }
        if let p = options.pidsLimit, p > 0 { resources.pids = Pids(limit: p) }
        linux.resources = resources
        applySecurity(to: &linux, capabilities: list)
        let parent = options.cgroupParent ?? "/scontainerd"
        linux.cgroupsPath = parent + "/" + id
        spec.linux = linux
        return spec
    }

    /// docker's set, then `capDrop`, then `capAdd` (`ALL` in either); everything the host
    /// grants when privileged.
    func capabilities() -> [String] {
        if options.privileged == true { return BundleBuilder.hostCapabilities }
        var caps = Set(DefaultSecurity.capabilities)
        for c in options.capDrop ?? [] { if c.uppercased() == "ALL" { caps.removeAll() } else if let name = Capability.canonical(c) { caps.remove(name) } }
        for c in options.capAdd ?? [] {
            if c.uppercased() == "ALL" { caps.formUnion(BundleBuilder.hostCapabilities) } else if let name = Capability.canonical(c) { caps.insert(name) }
        }
        return caps.sorted()
    }

    /// Seccomp, masked and read-only paths and devices as docker sets them: the default profile
    /// for the container's capabilities unless unconfined or given; none of it when privileged.
    func applySecurity(to linux: inout Linux, capabilities: [String]) {
        if options.privileged == true {
            linux.seccomp = nil
            linux.maskedPaths = nil
            linux.readonlyPaths = nil
            linux.resources?.devices = [DeviceRule(allow: true, access: "rwm")]
            linux.devices = BundleBuilder.hostDevices
            return
        }
        linux.seccomp = options.seccompUnconfined == true ? nil : (options.seccompProfile ?? DefaultSecurity.seccomp(capabilities: capabilities))
        linux.maskedPaths = DefaultSecurity.maskedPaths
        linux.readonlyPaths = DefaultSecurity.readonlyPaths
    }

    /// The host's device nodes directly under /dev, for a privileged container.
    static var hostDevices: [Device] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? []
        return names.sorted().compactMap { name in
            var st = stat()
            guard lstat("/dev/" + name, &st) == 0 else { return nil }
            let kind = st.st_mode & S_IFMT
            guard kind == S_IFCHR || kind == S_IFBLK, !["console", "ptmx", "tty"].contains(name) else { return nil }
            return Device(type: kind == S_IFCHR ? "c" : "b", path: "/dev/" + name, major: Int64(cl_major(st.st_rdev)), minor: Int64(cl_minor(st.st_rdev)),
                          fileMode: UInt32(st.st_mode & 0o7777), uid: st.st_uid, gid: st.st_gid)
        }
    }

    /// Where `--init` binds the init binary, as docker does.
    static let initPath = "/sbin/docker-init"

    /// The capabilities in the daemon's own bounding set: what `--cap-add ALL` can grant here.
    static let hostCapabilities: [String] = {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapBnd:") }),
              let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) else { return [] }
        return Capability.all.enumerated().filter { mask & (1 << UInt64($0.offset)) != 0 }.map(\.element)
    }()

    /// Image env first, then the caller's; a later KEY= replaces an earlier one. PATH defaults.
    static func mergeEnv(_ image: [String], _ extra: [String]) -> [String] {
        var order: [String] = []
        var values: [String: String] = [:]
        for entry in image + extra {
            let key = String(entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0])
            if values[key] == nil { order.append(key) }
            values[key] = entry
        }
        if values["PATH"] == nil {
            order.insert("PATH", at: 0)
            values["PATH"] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        }
        return order.map { values[$0]! }
    }

    /// "", "name", "uid", "name:group", "uid:gid" against the rootfs's /etc/passwd and /etc/group,
    /// read beneath the rootfs (a symlinked /etc/passwd cannot point at the host's).
    func resolveUser(_ text: String) throws -> User {
        guard !text.isEmpty else { return User(uid: 0, gid: 0) }
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        let passwd = readInRootfs("etc/passwd").split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
        let groups = readInRootfs("etc/group").split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
        var uid: UInt32, gid: UInt32, userName: String?
        if let n = UInt32(parts[0]) {
            uid = n
            let entry = passwd.first { $0.count > 3 && $0[2] == parts[0] }
            gid = entry.flatMap { UInt32($0[3]) } ?? 0
            userName = entry?[0]
        } else {
            guard let entry = passwd.first(where: { $0.count > 3 && $0[0] == parts[0] }), let u = UInt32(entry[2]), let g = UInt32(entry[3]) else {
                throw APIError.params("user \(parts[0]) is not in the image's /etc/passwd")
            }
            uid = u; gid = g; userName = parts[0]
        }
        if parts.count == 2 {
            if let g = UInt32(parts[1]) { gid = g } else {
                guard let entry = groups.first(where: { $0.count > 2 && $0[0] == parts[1] }), let g = UInt32(entry[2]) else {
                    throw APIError.params("group \(parts[1]) is not in the image's /etc/group")
                }
                gid = g
            }
        }
        var extra: [UInt32] = []
        if let userName {
            for g in groups where g.count > 3 && g[3].split(separator: ",").contains(Substring(userName)) {
                if let n = UInt32(g[2]), n != gid { extra.append(n) }
            }
        }
        return User(uid: uid, gid: gid, umask: nil, additionalGids: extra.isEmpty ? nil : extra)
    }

    private func readInRootfs(_ relative: String) -> String {
        let dir = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { return "" }
        defer { close(dir) }
        let fd = cl_openat_in_root(dir, relative, O_RDONLY)
        guard fd >= 0 else { return "" }
        return String(decoding: FileHandle(fileDescriptor: fd, closeOnDealloc: true).readDataToEndOfFile(), as: UTF8.self)
    }
}
