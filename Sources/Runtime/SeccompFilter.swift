@preconcurrency import Glibc
import CLinux
import OCI

/// `linux.seccomp` through libseccomp: validated at create (an unknown action, architecture,
/// flag or operator is an error; unknown syscall names are skipped, as runc skips them) and
/// loaded by the process itself as the last step before exec.
enum SeccompFilter {
    static let ops: [String: scmp_compare] = [
        "SCMP_CMP_NE": SCMP_CMP_NE, "SCMP_CMP_LT": SCMP_CMP_LT, "SCMP_CMP_LE": SCMP_CMP_LE, "SCMP_CMP_EQ": SCMP_CMP_EQ,
        "SCMP_CMP_GE": SCMP_CMP_GE, "SCMP_CMP_GT": SCMP_CMP_GT, "SCMP_CMP_MASKED_EQ": SCMP_CMP_MASKED_EQ,
    ]
    static let flags: [String: scmp_filter_attr] = [
        "SECCOMP_FILTER_FLAG_TSYNC": SCMP_FLTATR_CTL_TSYNC, "SECCOMP_FILTER_FLAG_LOG": SCMP_FLTATR_CTL_LOG,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW": SCMP_FLTATR_CTL_SSB,
    ]

    /// libseccomp's action value for a spec action ("SCMP_ACT_ERRNO" with its errno).
    static func action(_ name: String, errno ret: UInt32?) throws -> UInt32 {
        switch name {
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return 0x0000_0000
        case "SCMP_ACT_KILL_PROCESS": return 0x8000_0000
        case "SCMP_ACT_TRAP": return 0x0003_0000
        case "SCMP_ACT_ERRNO": return 0x0005_0000 | ((ret ?? UInt32(EPERM)) & 0xffff)
        case "SCMP_ACT_TRACE": return 0x7ff0_0000 | ((ret ?? UInt32(EPERM)) & 0xffff)
        case "SCMP_ACT_LOG": return 0x7ffc_0000
        case "SCMP_ACT_ALLOW": return 0x7fff_0000
        case "SCMP_ACT_NOTIFY": return 0x7fc0_0000
        default: throw RuntimeError("config.json: linux.seccomp: unknown action \"\(name)\"")
        }
    }

    static func architecture(_ name: String) -> UInt32 {
        var arch = name.lowercased()
        if arch.hasPrefix("scmp_arch_") { arch.removeFirst("scmp_arch_".count) }
        return seccomp_arch_resolve_name(arch)
    }

    /// Rejections at create time, before any process exists.
    static func validate(_ s: Seccomp) throws {
        _ = try action(s.defaultAction, errno: s.defaultErrnoRet)
        for a in s.architectures ?? [] where architecture(a) == 0 {
            throw RuntimeError("config.json: linux.seccomp: unknown architecture \"\(a)\"")
        }
        for f in s.flags ?? [] where flags[f] == nil && f != "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" {
            throw RuntimeError("config.json: linux.seccomp: unsupported flag \"\(f)\"")
        }
        let notify = ([s.defaultAction] + (s.syscalls ?? []).map(\.action)).contains("SCMP_ACT_NOTIFY")
        if notify { throw RuntimeError("config.json: linux.seccomp: SCMP_ACT_NOTIFY (listenerPath) is not supported yet") }
        for (i, rule) in (s.syscalls ?? []).enumerated() {
            _ = try action(rule.action, errno: rule.errnoRet)
            for arg in rule.args ?? [] where ops[arg.op] == nil || arg.index > 5 {
                throw RuntimeError("config.json: linux.seccomp.syscalls[\(i)]: invalid argument condition \(arg.op) on index \(arg.index)")
            }
        }
    }

    /// Builds and loads the filter into this process.
    static func load(_ s: Seccomp) throws {
        let defaultAction = try action(s.defaultAction, errno: s.defaultErrnoRet)
        guard let ctx = seccomp_init(defaultAction) else { throw RuntimeError("seccomp_init failed") }
        defer { seccomp_release(ctx) }
        // no_new_privs is the process's own setting (process.noNewPrivileges), not the filter's.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        for f in s.flags ?? [] { if let attr = flags[f] { _ = seccomp_attr_set(ctx, attr, 1) } }
        for a in s.architectures ?? [] {
            let r = seccomp_arch_add(ctx, architecture(a))
            if r < 0 && r != -EEXIST { throw RuntimeError.sys("seccomp: add architecture \(a)", -r) }
        }
        for rule in s.syscalls ?? [] {
            let act = try action(rule.action, errno: rule.errnoRet)
            if act == defaultAction { continue }
            let conds = (rule.args ?? []).map {
                scmp_arg_cmp(arg: $0.index, op: ops[$0.op]!, datum_a: $0.value, datum_b: $0.valueTwo ?? 0)
            }
            // Conditions on one argument index are alternatives (OR): one rule each, as runc does.
            let indexes = conds.map(\.arg)
            let groups = Set(indexes).count == indexes.count ? [conds] : conds.map { [$0] }
            for name in rule.names {
                let nr = seccomp_syscall_resolve_name(name)
                if nr == __NR_SCMP_ERROR { continue }
                for var g in groups {
                    let r = seccomp_rule_add_array(ctx, act, nr, UInt32(g.count), &g)
                    if r < 0 { throw RuntimeError.sys("seccomp: add rule for \(name)", -r) }
                }
            }
        }
        let r = seccomp_load(ctx)
        if r < 0 { throw RuntimeError.sys("seccomp: load filter", -r) }
    }
}
