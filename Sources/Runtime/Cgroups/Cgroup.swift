@preconcurrency import Glibc
import OCI

/// The container's cgroup on disk: created before the init is cloned, joined by the init before
/// its first instruction of user code, limited by `linux.resources`, frozen by pause, removed by
/// delete. v1 and v2 differ only in the layout and the file names (see ResourceWrites).
public struct Cgroup: Sendable {
    public let layout: CgroupLayout
    public init(layout: CgroupLayout) { self.layout = layout }

    /// mkdir -p of every directory, with v1 cpuset seeded and v2 controllers delegated.
    func create() throws {
        for d in layout.dirs {
            try makeDirectories(d.path, seedCpuset: layout.version == .v1 && d.controllers.split(separator: ",").contains("cpuset"))
        }
    }

    /// mkdir of the leaf, walking up only when a parent is missing (the usual case is one call).
    private func makeDirectories(_ path: String, seedCpuset: Bool) throws {
        if mkdir(path, 0o755) == 0 {
            if seedCpuset { try seedFromParent(path) }
            return
        }
        if errno == EEXIST { return }
        guard errno == ENOENT, let slash = path.lastIndex(of: "/"), slash != path.startIndex else {
            throw RuntimeError.sys("create cgroup \(path)")
        }
        try makeDirectories(String(path[..<slash]), seedCpuset: seedCpuset)
        try makeDirectories(path, seedCpuset: seedCpuset)
    }

    /// A fresh cpuset has no cpus or mems and refuses tasks: it inherits its parent's, which
    /// may itself be empty (a pod cgroup someone else made): those are filled first, as runc does.
    private func seedFromParent(_ path: String) throws {
        try fillEmptyCpusets(above: path)
        try copyCpuset(from: String(path[..<path.lastIndex(of: "/")!]), to: path)
    }

    /// Fills every empty cpuset between the hierarchy's root and `path` from its parent, top down.
    func fillEmptyCpusets(above path: String) throws {
        guard let parentEnd = path.lastIndex(of: "/") else { return }
        let parent = String(path[..<parentEnd])
        guard Files.exists(parent + "/cpuset.cpus"), let grandEnd = parent.lastIndex(of: "/"),
              Files.exists(String(parent[..<grandEnd]) + "/cpuset.cpus") else { return }
        try fillEmptyCpusets(above: parent)
        try copyCpuset(from: String(parent[..<grandEnd]), to: parent)
    }

    /// cpuset.cpus and cpuset.mems of `parent` into `child`, where the child's are empty.
    private func copyCpuset(from parent: String, to child: String) throws {
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let current = (Files.readString(child + "/" + f) ?? "").trimmingNewlines
            let v = (Files.readString(parent + "/" + f) ?? "").trimmingNewlines
            if current.isEmpty && !v.isEmpty { try Files.write(child + "/" + f, v) }
        }
    }

    /// Applies resources; a write the kernel refuses is retried once after the others, since
    /// some pairs (memory limit and memsw) must change in an order that depends on old values.
    public func apply(_ resources: Resources?) throws {
        guard let resources else { return }
        let writes = layout.version == .v1 ? try ResourceWrites.v1(resources) : try ResourceWrites.v2(resources)
        if layout.version == .v1, writes.contains(where: { $0.controller == "cpuset" }), let dir = layout.dir(for: "cpuset") {
            try fillEmptyCpusets(above: dir)
        }
        if layout.version == .v2 {
            try delegate(Set(writes.compactMap { $0.file.split(separator: ".").first.map(String.init) }))
            if let devices = resources.devices, !devices.isEmpty, let dir = layout.dirs.first?.path {
                try DeviceProgram.attach(devices + ResourceWrites.alwaysAllowedDevices, to: dir)
            }
        }
        var failed: [(CgroupWrite, RuntimeError)] = []
        for w in writes {
            do { try write(w) } catch let e as RuntimeError { failed.append((w, e)) }
        }
        for (w, e) in failed {
            do { try write(w) } catch { throw RuntimeError("cgroup \(w.file)=\(w.value): \(e.message)") }
        }
    }

    private func write(_ w: CgroupWrite) throws {
        guard let dir = layout.dir(for: w.controller) else {
            throw RuntimeError("cgroup controller \(w.controller) is not mounted (needed for \(w.file))")
        }
        guard let file = ([w.file] + (w.fallback.map { [$0] } ?? [])).first(where: { Files.exists(dir + "/" + $0) }) else {
            if w.skipIfMissing { return }
            throw RuntimeError("\(w.file) is not supported by this kernel")
        }
        try Files.write(dir + "/" + file, w.value)
    }

    /// v2: enables the controllers in every ancestor's cgroup.subtree_control.
    private func delegate(_ controllers: Set<String>) throws {
        let wanted = controllers.subtracting(["cgroup"])
        guard !wanted.isEmpty, let root = CgroupMount.unifiedRoot, let dir = layout.dirs.first?.path,
              dir.hasPrefix(root + "/") else { return }
        var ancestor = root
        let parts = dir.dropFirst(ancestor.count).split(separator: "/")
        for part in parts {
            let available = Set((Files.readString(ancestor + "/cgroup.controllers") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
            let missing = wanted.subtracting(available)
            if !missing.isEmpty { throw RuntimeError("cgroup v2 controllers not available in \(ancestor): \(missing.sorted().joined(separator: " "))") }
            try Files.write(ancestor + "/cgroup.subtree_control", wanted.sorted().map { "+" + $0 }.joined(separator: " "))
            ancestor += "/" + part
        }
    }

    /// The cgroup.procs files a process writes "0" to (or its pid) to enter the cgroup.
    var procsFiles: [String] { layout.dirs.map { $0.path + "/cgroup.procs" } }

    /// `exec --cgroup`: the cgroup.procs files with each `[controller[,controller]:]path` taken
    /// below the container's cgroup (every controller when none is named), as runc does. The
    /// sub-cgroups must exist; a path that climbs out is refused.
    func procsFiles(sub specs: [String]) throws -> [String] {
        var subPath: [String: String] = [:]  // controller ("" = all) -> path
        for spec in specs {
            let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let path = String(parts.last!), controllers = parts.count > 1 ? parts[0].split(separator: ",").map(String.init) : [""]
            guard !path.isEmpty, !path.split(separator: "/").contains("..") else { throw RuntimeError("\(path) is not a sub cgroup path") }
            for c in controllers {
                if layout.version == .v1, !c.isEmpty, layout.dir(for: c) == nil {
                    throw RuntimeError("unknown controller \(c) in SubCgroupPaths")
                }
                subPath[layout.version == .v2 ? "" : c] = path
            }
        }
        return layout.dirs.map { dir in
            let own = dir.controllers.split(separator: ",").map(String.init).first { subPath[$0] != nil }
            guard let sub = own.flatMap({ subPath[$0] }) ?? subPath[""] else { return dir.path + "/cgroup.procs" }
            return dir.path + "/" + sub + "/cgroup.procs"
        }
    }

    /// How a single-threaded process (the init, exec's intermediate) enters the container's
    /// cgroup itself: "0" into each v1 hierarchy's `tasks`, and the cgroup2 directory (the v2
    /// host's, or a hybrid host's unified one) given to clone3 as CLONE_INTO_CGROUP. Neither
    /// takes the kernel's threadgroup lock, whose writers wait for an RCU grace period (10-20
    /// ms here, most of a container's start): cgroup.procs takes it for every write, `tasks`
    /// only for another task's pid. `sub`: exec --cgroup's sub-cgroups.
    func selfPlacement(sub: [String] = []) throws -> CgroupPlacement {
        var tasks: [String] = [], unified: String?
        for (dir, file) in zip(layout.dirs, try procsFiles(sub: sub)) {
            let path = String(file.dropLast("/cgroup.procs".count))
            if layout.isUnified(dir) { unified = path } else { tasks.append(path + "/tasks") }
        }
        return CgroupPlacement(tasksFiles: tasks, unifiedDir: unified)
    }

    /// Writes `pid` into every hierarchy (a process in a user namespace cannot place itself);
    /// the cgroup2 one is skipped when the process was born there.
    func join(_ pid: pid_t, bornInUnified: Bool = false) throws {
        for (dir, f) in zip(layout.dirs, procsFiles) where !(bornInUnified && layout.isUnified(dir)) {
            try Files.write(f, String(pid))
        }
    }

    /// Pids of every process in the container's cgroup.
    public func pids() -> [pid_t] {
        let dir = layout.dir(for: "pids") ?? layout.dir(for: "freezer") ?? layout.dirs.first?.path ?? ""
        return (Files.readString(dir + "/cgroup.procs") ?? "").split(separator: "\n").compactMap { pid_t($0) }
    }

    public var isFrozen: Bool {
        switch layout.version {
        case .v1: return Files.readString((layout.dir(for: "freezer") ?? "") + "/freezer.state")?.hasPrefix("FROZEN") == true
        case .v2: return Files.readString((layout.dirs.first?.path ?? "") + "/cgroup.freeze")?.hasPrefix("1") == true
        }
    }

    /// Freezes or thaws every process and waits until the kernel reports the new state.
    public func setFrozen(_ frozen: Bool) throws {
        let (file, value, doneFile, done): (String, String, String, String)
        switch layout.version {
        case .v1:
            guard let dir = layout.dir(for: "freezer") else { throw RuntimeError("freezer cgroup is not mounted") }
            (file, value, doneFile, done) = (dir + "/freezer.state", frozen ? "FROZEN" : "THAWED", dir + "/freezer.state", frozen ? "FROZEN" : "THAWED")
        case .v2:
            let dir = layout.dirs.first!.path
            (file, value, doneFile, done) = (dir + "/cgroup.freeze", frozen ? "1" : "0", dir + "/cgroup.events", frozen ? "frozen 1" : "frozen 0")
        }
        for _ in 0..<2000 {
            try Files.write(file, value)
            if (Files.readString(doneFile) ?? "").contains(done) { return }
            usleep(1000)
        }
        throw RuntimeError("timed out waiting for cgroup to become \(value)")
    }

    /// Removes the directories, with any sub-cgroups made inside them (`exec --cgroup`'s),
    /// deepest first, killing what still runs there. Only the container's own subtree goes.
    public func destroy() {
        if isFrozen { try? setFrozen(false) }  // frozen tasks only die once thawed
        if layout.version == .v2, let dir = layout.dirs.first?.path { DeviceProgram.detachAll(from: dir) }
        for d in layout.dirs { Cgroup.removeTree(d.path) }
    }

    private static func removeTree(_ path: String) {
        // The usual leaf goes at the first rmdir; only a busy one is searched for children.
        if rmdir(path) == 0 || errno == ENOENT { return }
        for child in subdirectories(of: path) { removeTree(path + "/" + child) }
        for _ in 0..<100 {
            if rmdir(path) == 0 || errno == ENOENT { return }
            if errno != EBUSY { return }
            for pid in (Files.readString(path + "/cgroup.procs") ?? "").split(separator: "\n").compactMap({ pid_t($0) }) {
                kill(pid, SIGKILL)
            }
            usleep(1000)
        }
    }

    private static func subdirectories(of path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

/// Where a process puts itself (see Cgroup.selfPlacement).
struct CgroupPlacement {
    var tasksFiles: [String] = []
    var unifiedDir: String?

    /// The cgroup2 directory open for clone3's CLONE_INTO_CGROUP; -1 without one.
    func openUnified() throws -> Int32 {
        guard let dir = unifiedDir else { return -1 }
        return try check("open cgroup \(dir)") { open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
    }
}

extension Cgroup {
    /// rmdir of each directory that is empty, touching nothing else: for a cgroup that may
    /// belong to someone else.
    func removeEmpty() {
        for d in layout.dirs { rmdir(d.path) }
    }
}

private extension String {
    /// The first line, without its newline.
    var trimmingNewlines: String { split(separator: "\n").first.map(String.init) ?? "" }
}
