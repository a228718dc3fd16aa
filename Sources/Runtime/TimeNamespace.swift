@preconcurrency import Glibc
import CLinux
import OCI

/// A new time namespace with `linux.timeOffsets`. Offsets can only be written while nobody is
/// in the namespace, so clone cannot make it: the init unshares it (which makes it for its
/// children), writes the offsets, then enters it itself with setns before anything else runs.
enum TimeNamespace {
    /// The clocks a time namespace offsets (the spec's names are the kernel's).
    static let clocks: Set<String> = ["monotonic", "boottime"]

    static func validate(_ spec: Spec) throws {
        let offsets = spec.linux?.timeOffsets ?? [:]
        for (clock, offset) in offsets {
            guard clocks.contains(clock) else {
                throw RuntimeError("config.json: linux.timeOffsets: unknown clock \"\(clock)\" (monotonic or boottime)")
            }
            guard (offset.nanosecs ?? 0) < 1_000_000_000 else {
                throw RuntimeError("config.json: linux.timeOffsets.\(clock).nanosecs must be below 1000000000")
            }
        }
        if !offsets.isEmpty && !spec.hasNewNamespace("time") {
            throw RuntimeError("config.json: linux.timeOffsets given without a new time namespace")
        }
    }

    /// In the init, single-threaded, with /proc still the host's.
    static func enter(offsets: [String: TimeOffset]) throws {
        try check("unshare time namespace") { cl_unshare(CL_NEWTIME) }
        let lines = offsets.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.secs ?? 0) \($0.value.nanosecs ?? 0)\n" }.joined()
        if !lines.isEmpty {
            do { try Files.write("/proc/self/timens_offsets", lines) } catch {
                throw RuntimeError("write time namespace offsets: \(error)")
            }
        }
        let fd = try check("open time_for_children") { open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        try check("enter time namespace") { cl_setns(fd, CL_NEWTIME) }
    }
}
