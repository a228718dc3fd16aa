@preconcurrency import Glibc
import CLinux

/// Tells `events` when the kernel OOM-kills in the container's cgroup, as runc's `oom` event:
/// v1 registers an eventfd for memory.oom_control through cgroup.event_control; v2 watches
/// memory.events with inotify and compares its oom_kill count.
struct OOMWatch {
    /// Readable when something happened; poll it.
    let fd: Int32
    private let eventsFile: String?
    private var kills: UInt64

    init?(_ layout: CgroupLayout) {
        guard let dir = layout.dir(for: "memory") else { return nil }
        switch layout.version {
        case .v1:
            let efd = cl_eventfd()
            let control = open(dir + "/memory.oom_control", O_RDONLY | O_CLOEXEC)
            defer { if control >= 0 { Glibc.close(control) } }
            guard efd >= 0, control >= 0, (try? Files.write(dir + "/cgroup.event_control", "\(efd) \(control)")) != nil else {
                if efd >= 0 { Glibc.close(efd) }
                return nil
            }
            (fd, eventsFile, kills) = (efd, nil, 0)
        case .v2:
            let ifd = inotify_init1(Int32(IN_CLOEXEC))
            guard ifd >= 0, inotify_add_watch(ifd, dir + "/memory.events", UInt32(IN_MODIFY)) >= 0 else {
                if ifd >= 0 { Glibc.close(ifd) }
                return nil
            }
            (fd, eventsFile) = (ifd, dir + "/memory.events")
            kills = OOMWatch.killCount(dir + "/memory.events")
        }
    }

    /// Consumes the notification; true when it was an OOM kill.
    mutating func consume() -> Bool {
        var buf = [UInt8](repeating: 0, count: 4096)
        guard read(fd, &buf, buf.count) > 0 else { return false }
        guard let eventsFile else { return true }
        let now = OOMWatch.killCount(eventsFile)
        defer { kills = now }
        return now > kills
    }

    private static func killCount(_ file: String) -> UInt64 {
        for line in (Files.readString(file) ?? "").split(separator: "\n") where line.hasPrefix("oom_kill ") {
            return UInt64(line.dropFirst(9)) ?? 0
        }
        return 0
    }

    func close() { _ = Glibc.close(fd) }
}
