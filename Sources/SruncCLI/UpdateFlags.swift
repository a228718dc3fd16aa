@preconcurrency import Glibc
import OCI
import Runtime

/// `srunc update`'s flags (runc's names) and `-r FILE` (a linux.resources JSON; "-" is stdin).
enum UpdateFlags {
    static let flags: [FlagSpec] = [
        .value("resources", "r"), .value("memory"), .value("memory-reservation"), .value("memory-swap"),
        .value("kernel-memory"), .value("kernel-memory-tcp"), .value("cpu-period"), .value("cpu-quota"),
        .value("cpu-share"), .value("cpu-rt-period"), .value("cpu-rt-runtime"), .value("cpuset-cpus"),
        .value("cpuset-mems"), .value("pids-limit"), .value("blkio-weight"), .value("l3-cache-schema"),
        .value("mem-bw-schema"),
    ]

    static func resources(_ a: ParsedArguments) throws -> Resources {
        var r = Resources()
        if let file = a.value("resources") {
            let fd = file == "-" ? 0 : open(file, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw RuntimeError.sys("open \(file)") }
            let bytes = Files.readAll(fd)
            if fd != 0 { close(fd) }
            r = try JSON.decode(Resources.self, from: bytes, what: file)
        }
        func bytes(_ name: String) throws -> Int64? { try a.value(name).map { try parseBytes($0, flag: name) } }
        func number<T: FixedWidthInteger>(_ name: String) throws -> T? {
            guard let v = a.value(name) else { return nil }
            guard let n = T(v) else { throw UsageError("invalid value for --\(name): \(v)") }
            return n
        }
        if a.value("kernel-memory") != nil || a.value("kernel-memory-tcp") != nil {
            // As runc 1.1: accepted, never written (kernel memory accounting is deprecated).
            Output.printError("srunc: warning: kernel memory settings are ignored and will be removed\n")
        }
        if let v = try bytes("memory") { r.memory = r.memory ?? Memory(); r.memory!.limit = v }
        if let v = try bytes("memory-reservation") { r.memory = r.memory ?? Memory(); r.memory!.reservation = v }
        if let v = try bytes("memory-swap") { r.memory = r.memory ?? Memory(); r.memory!.swap = v }
        if let v: UInt64 = try number("cpu-period") { r.cpu = r.cpu ?? CPU(); r.cpu!.period = v }
        if let v: Int64 = try number("cpu-quota") { r.cpu = r.cpu ?? CPU(); r.cpu!.quota = v }
        if let v: UInt64 = try number("cpu-share") { r.cpu = r.cpu ?? CPU(); r.cpu!.shares = v }
        if let v: UInt64 = try number("cpu-rt-period") { r.cpu = r.cpu ?? CPU(); r.cpu!.realtimePeriod = v }
        if let v: Int64 = try number("cpu-rt-runtime") { r.cpu = r.cpu ?? CPU(); r.cpu!.realtimeRuntime = v }
        if let v = a.value("cpuset-cpus") { r.cpu = r.cpu ?? CPU(); r.cpu!.cpus = v }
        if let v = a.value("cpuset-mems") { r.cpu = r.cpu ?? CPU(); r.cpu!.mems = v }
        if let v: Int64 = try number("pids-limit") { r.pids = Pids(limit: v) }
        if let v: UInt16 = try number("blkio-weight") { r.blockIO = r.blockIO ?? BlockIO(); r.blockIO!.weight = v }
        return r
    }

    /// "512m", "1g", "1048576", "-1" (unlimited), as docker's RAMInBytes reads them.
    static func parseBytes(_ text: String, flag: String) throws -> Int64 {
        if text == "-1" { return -1 }
        var digits = text.lowercased()
        if digits.hasSuffix("b") { digits.removeLast() }
        var scale: Int64 = 1
        if let unit = digits.last, let power = ["k": 1, "m": 2, "g": 3, "t": 4][String(unit)] {
            scale = Int64(1) << (10 * power)
            digits.removeLast()
        }
        guard let n = Int64(digits), n >= 0 else { throw UsageError("invalid value for --\(flag): \(text)") }
        return n * scale
    }
}
