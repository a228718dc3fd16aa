@preconcurrency import Glibc
import OCI

/// `process.rlimits`: names to resources, applied with setrlimit before privileges drop.
enum Rlimits {
    static let names = ["RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
                        "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS",
                        "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
                        "RLIMIT_RTPRIO", "RLIMIT_RTTIME"]

    static func resource(named name: String) -> Int32? { names.firstIndex(of: name).map(Int32.init) }

    /// Applies each limit; raising a hard limit without CAP_SYS_RESOURCE fails with a clear error.
    static func apply(_ limits: [Rlimit]) throws {
        for l in limits {
            var r = rlimit(rlim_cur: rlim_t(l.soft), rlim_max: rlim_t(l.hard))
            if setrlimit(__rlimit_resource_t(UInt32(resource(named: l.type)!)), &r) != 0 {
                throw RuntimeError.sys("setrlimit \(l.type) soft=\(l.soft) hard=\(l.hard)")
            }
        }
    }
}
