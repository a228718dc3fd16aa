@preconcurrency import Glibc
import OCI

/// What srunc remembers of a container between invocations: `<root>/<id>/state.json`.
/// The status is not stored: it is derived from the live process each time (see `status`).
public struct ContainerRecord: Codable, Sendable {
    public var id: String
    public var initPid: Int32
    /// Field 22 of /proc/<pid>/stat at create: a recycled pid never passes for the container.
    public var initStartTime: UInt64
    public var bundle: String
    public var rootfs: String
    public var created: String
    public var cgroup: CgroupLayout?
    public var config: Spec
}

/// The runtime status of a container, as the OCI spec names it.
public enum ContainerStatus: String, Sendable {
    case creating, created, running, paused, stopped
}

/// The state root (`--root`): one directory per container; mkdir of it is the id's lock.
public struct StateStore: Sendable {
    public let root: String
    public init(root: String) { self.root = root }

    public func directory(_ id: String) -> String { root + "/" + id }
    func fifoPath(_ id: String) -> String { directory(id) + "/exec.fifo" }
    func statePath(_ id: String) -> String { directory(id) + "/state.json" }
    func cgroupNotePath(_ id: String) -> String { directory(id) + "/cgroup.json" }

    /// Compiled seccomp programs (SeccompProgram.prepare); '@' is in no container id.
    var seccompCache: String { root + "/@seccomp" }

    /// Rejects ids that could name a path outside the root, as runc does.
    public static func validate(id: String) throws {
        if id.isEmpty { throw RuntimeError("container id cannot be empty") }
        let ok = id.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
                || c == 0x5f || c == 0x2b || c == 0x2d || c == 0x2e
        }
        if !ok || id == "." || id == ".." || id.utf8.count > 1024 { throw RuntimeError("invalid container id format: \(id)") }
    }

    /// Creates the container's directory; fails if the id is taken.
    func claim(_ id: String) throws {
        try StateStore.validate(id: id)
        try Files.makeDirectories(root, mode: 0o711)
        if mkdir(directory(id), 0o711) != 0 {
            if errno == EEXIST { throw RuntimeError("container with id exists: \(id)") }
            throw RuntimeError.sys("mkdir \(directory(id))")
        }
    }

    /// The cgroup a create is about to make, written before it is made: if srunc dies before
    /// state.json exists, `delete --force` still finds (and removes) it. A plain write into the
    /// fresh claim directory, no fsync: it is on every create's path, and a torn note only
    /// costs that cleanup.
    func noteCgroup(_ id: String, _ layout: CgroupLayout) throws {
        let fd = open(cgroupNotePath(id), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 { throw RuntimeError.sys("create \(cgroupNotePath(id))") }
        defer { close(fd) }
        try Files.writeAll(fd, try JSON.encode(layout))
    }

    /// The cgroup of a create that never finished, if it got that far.
    func notedCgroup(_ id: String) -> CgroupLayout? {
        Files.read(cgroupNotePath(id)).flatMap { try? JSON.decode(CgroupLayout.self, from: $0, what: "cgroup note of \(id)") }
    }

    func save(_ record: ContainerRecord) throws {
        try Files.writeAtomically(statePath(record.id), try JSON.encode(record), mode: 0o600)
    }

    /// The first save, at create: `record.config` is exactly the bundle's config.json, whose
    /// bytes are spliced in as they are rather than encoded again (encoding a Spec took ~1 ms of
    /// every create). The same bytes decode to the same Spec on every later load.
    func saveCreated(_ record: ContainerRecord, configBytes: [UInt8]) throws {
        var text = try JSON.encode(RecordHead(record))
        guard text.last == UInt8(ascii: "}"), let config = StateStore.jsonObject(configBytes) else {
            return try save(record)
        }
        text.removeLast()
        text += Array(#","config":"#.utf8) + config + [UInt8(ascii: "}")]
        try Files.writeAtomically(statePath(record.id), text, mode: 0o600)
    }

    /// The object's bytes without a leading byte-order mark or surrounding whitespace; nil when
    /// they do not start with `{` and end with `}`.
    private static func jsonObject(_ bytes: [UInt8]) -> ArraySlice<UInt8>? {
        var slice = bytes[...]
        if slice.starts(with: [0xef, 0xbb, 0xbf]) { slice = slice.dropFirst(3) }
        let space: Set<UInt8> = [0x20, 0x09, 0x0a, 0x0d]
        while let c = slice.first, space.contains(c) { slice = slice.dropFirst() }
        while let c = slice.last, space.contains(c) { slice = slice.dropLast() }
        return slice.first == UInt8(ascii: "{") && slice.last == UInt8(ascii: "}") ? slice : nil
    }

    /// Every field of a record but its config, in ContainerRecord's keys.
    private struct RecordHead: Encodable {
        let id: String, initPid: Int32, initStartTime: UInt64, bundle: String, rootfs: String, created: String
        let cgroup: CgroupLayout?
        init(_ r: ContainerRecord) {
            id = r.id; initPid = r.initPid; initStartTime = r.initStartTime; bundle = r.bundle; rootfs = r.rootfs
            created = r.created; cgroup = r.cgroup
        }
    }

    /// Loads a container's record; a missing one is runc's "does not exist" error.
    public func load(_ id: String) throws -> ContainerRecord {
        try StateStore.validate(id: id)
        guard let bytes = Files.read(statePath(id)) else {
            throw RuntimeError("container \"\(id)\" does not exist")
        }
        return try JSON.decode(ContainerRecord.self, from: bytes, what: "state of \(id)")
    }

    public func ids() -> [String] {
        Files.list(root).filter { Files.exists(statePath($0)) }.sorted()
    }

    /// Derived status: a dead (or recycled, or zombie) init is stopped; a live one still blocked
    /// on exec.fifo is created; a frozen cgroup is paused; else running.
    public func status(of record: ContainerRecord) -> ContainerStatus {
        guard let stat = ProcStat(pid: record.initPid), stat.startTime == record.initStartTime,
              stat.state != "Z", stat.state != "X" else { return .stopped }
        if Files.exists(fifoPath(record.id)) { return .created }
        if let layout = record.cgroup, Cgroup(layout: layout).isFrozen { return .paused }
        return .running
    }

    public func remove(_ id: String) { Files.removeTree(directory(id)) }
}

/// The two fields of /proc/<pid>/stat the runtime needs.
struct ProcStat {
    let state: Character
    let startTime: UInt64

    init?(pid: Int32) {
        guard pid > 0, let text = Files.readString("/proc/\(pid)/stat"),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces): state is field 3, starttime 22.
        let rest = text[text.index(after: close)...].split(separator: " ")
        guard rest.count > 19, let st = UInt64(rest[19]) else { return nil }
        state = rest[0].first ?? "?"
        startTime = st
    }
}
