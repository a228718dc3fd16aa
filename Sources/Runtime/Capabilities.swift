@preconcurrency import Glibc
import CLinux
import OCI

/// `process.capabilities` through libcap: names validated at create, sets applied in the init
/// right before exec (bounding first, while still root; the rest after the uid change).
enum Capabilities {
    /// The highest capability this kernel knows, read once per process.
    static let last = cl_cap_last()

    /// libcap's value for "CAP_X", or nil for a name it does not know.
    static func value(of name: String) -> cap_value_t? {
        guard name.hasPrefix("CAP_") else { return nil }
        var v: cap_value_t = 0
        return cap_from_name(name.lowercased(), &v) == 0 ? v : nil
    }

    static func validate(_ caps: OCI.Capabilities?) throws {
        guard let caps else { return }
        let sets: [(String, [String]?)] = [("bounding", caps.bounding), ("effective", caps.effective),
            ("inheritable", caps.inheritable), ("permitted", caps.permitted), ("ambient", caps.ambient)]
        for (set, names) in sets {
            for name in names ?? [] where value(of: name) == nil {
                throw RuntimeError("config.json: process.capabilities.\(set): unknown capability \"\(name)\"")
            }
        }
    }

    /// Fails, in create, for a capability the process could not be given: one outside our own
    /// bounding set (runc fails create the same way, in the same words).
    static func checkGrantable(_ caps: OCI.Capabilities?) throws {
        guard let caps else { return }
        let last = Capabilities.last
        for c in values((caps.permitted ?? []) + (caps.effective ?? []) + (caps.inheritable ?? []) + (caps.ambient ?? []), last: last)
        where cl_prctl(PR_CAPBSET_READ, UInt(c), 0, 0, 0) != 1 {
            throw RuntimeError("unable to apply caps: operation not permitted")
        }
    }

    /// Values of the named caps that this kernel knows (runc ignores newer ones the same way).
    private static func values(_ names: [String]?, last: UInt) -> [cap_value_t] {
        (names ?? []).compactMap { value(of: $0) }.filter { UInt($0) <= last }
    }

    /// Drops every capability not in the bounding set. Needs CAP_SETPCAP: call before setuid.
    static func dropBounding(_ caps: OCI.Capabilities) throws {
        let last = Capabilities.last
        let keep = Set(values(caps.bounding, last: last))
        for c in 0...last where !keep.contains(cap_value_t(c)) {
            if cl_prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL {
                throw RuntimeError.sys("drop bounding capability \(c)")
            }
        }
    }

    /// Sets effective, permitted and inheritable, then raises the ambient set.
    static func applySets(_ caps: OCI.Capabilities) throws {
        let last = Capabilities.last
        guard let state = cap_init() else { throw RuntimeError.sys("cap_init") }
        defer { cap_free(UnsafeMutableRawPointer(state)) }
        for (flag, names) in [(CAP_EFFECTIVE, caps.effective), (CAP_PERMITTED, caps.permitted),
                              (CAP_INHERITABLE, caps.inheritable)] {
            var vals = values(names, last: last)
            if !vals.isEmpty && cap_set_flag(state, flag, Int32(vals.count), &vals, CAP_SET) != 0 {
                throw RuntimeError.sys("cap_set_flag")
            }
        }
        if cap_set_proc(state) != 0 { throw RuntimeError("unable to apply caps: \(RuntimeError.goText(errno))") }
        _ = cl_prctl(PR_CAP_AMBIENT, UInt(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0)
        // The kernel only raises an ambient cap that is permitted and inheritable; runc skips the
        // others silently (its own default spec lists ambient caps without inheritable ones).
        let raisable = Set(values(caps.permitted, last: last)).intersection(values(caps.inheritable, last: last))
        for c in values(caps.ambient, last: last) where raisable.contains(c) {
            if cl_prctl(PR_CAP_AMBIENT, UInt(PR_CAP_AMBIENT_RAISE), UInt(c), 0, 0) != 0 {
                throw RuntimeError.sys("raise ambient capability \(c)")
            }
        }
    }
}
