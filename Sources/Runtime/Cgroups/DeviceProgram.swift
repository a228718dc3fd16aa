@preconcurrency import Glibc
import CLinux
import OCI

/// The device program attached to a container's v2 cgroup: loaded from DeviceFilter's
/// instructions, attached (atomically replacing the one before on `update`) and detached when
/// the container is deleted. The attachment keeps the program alive after srunc exits.
enum DeviceProgram {
    /// Loads the program for `rules` and makes it the cgroup's only srunc device program.
    static func attach(_ rules: [DeviceRule], to cgroupDir: String) throws {
        let cgroupFD = try openCgroup(cgroupDir)
        defer { close(cgroupFD) }
        let code = DeviceFilter.bytes(DeviceFilter.program(rules))
        var log = [CChar](repeating: 0, count: 16 * 1024)
        let progFD = code.withUnsafeBytes { cl_bpf_load_device_program($0.baseAddress, UInt32(code.count / 8), &log, UInt32(log.count)) }
        guard progFD >= 0 else {
            let e = errno
            let verifier = String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: "\n").suffix(3).joined(separator: "; ")
            throw RuntimeError("load cgroup device program: \(String(cString: strerror(e)))\(verifier.isEmpty ? "" : " (" + verifier + ")")")
        }
        defer { close(progFD) }
        let old = try attachedPrograms(cgroupFD)
        defer { old.forEach { close($0) } }
        // One program before: swapped in one step, so no access is ever judged by neither.
        let replace = old.count == 1 ? old[0] : -1
        guard cl_bpf_attach_device_program(cgroupFD, progFD, replace) == 0 else {
            throw RuntimeError.sys("attach cgroup device program to \(cgroupDir)")
        }
        if replace < 0 { for fd in old { _ = cl_bpf_detach_device_program(cgroupFD, fd) } }
    }

    /// Detaches every device program from the cgroup (delete, before its rmdir).
    static func detachAll(from cgroupDir: String) {
        guard let cgroupFD = try? openCgroup(cgroupDir) else { return }
        defer { close(cgroupFD) }
        for fd in (try? attachedPrograms(cgroupFD)) ?? [] {
            _ = cl_bpf_detach_device_program(cgroupFD, fd)
            close(fd)
        }
    }

    /// The ids of the programs attached to the cgroup (what `bpftool cgroup show` lists).
    static func attachedIDs(_ cgroupDir: String) throws -> [UInt32] {
        let cgroupFD = try openCgroup(cgroupDir)
        defer { close(cgroupFD) }
        return try queryIDs(cgroupFD)
    }

    private static func openCgroup(_ dir: String) throws -> Int32 {
        try check("open cgroup \(dir)") { open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
    }

    private static func queryIDs(_ cgroupFD: Int32) throws -> [UInt32] {
        var ids = [UInt32](repeating: 0, count: 64)
        let n = cl_bpf_query_device_programs(cgroupFD, &ids, UInt32(ids.count))
        guard n >= 0 else { throw RuntimeError.sys("query cgroup device programs") }
        return Array(ids.prefix(Int(n)))
    }

    /// Fds of the attached programs, which detach and replace take.
    private static func attachedPrograms(_ cgroupFD: Int32) throws -> [Int32] {
        try queryIDs(cgroupFD).compactMap { id in
            let fd = cl_bpf_program_fd(id)
            return fd >= 0 ? fd : nil
        }
    }
}
