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
    /// The kernel's SECCOMP_FILTER_FLAG_* values: srunc loads the program itself (see load).
    static let flags: [String: UInt32] = [
        "SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    ]
    static let newListenerFlag: UInt32 = 8

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
        case "SCMP_ACT_NOTIFY": return 0x7fc0_0000  // SCMP_ACT_NOTIFY
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
        if usesNotify(s) {
            guard let path = s.listenerPath, path.hasPrefix("/") else {
                throw RuntimeError("config.json: linux.seccomp: SCMP_ACT_NOTIFY needs an absolute listenerPath")
            }
            if s.defaultAction == "SCMP_ACT_NOTIFY" {
                throw RuntimeError("config.json: linux.seccomp: SCMP_ACT_NOTIFY cannot be the default action")
            }
        }
        for (i, rule) in (s.syscalls ?? []).enumerated() {
            _ = try action(rule.action, errno: rule.errnoRet)
            // The agent's own writes would be trapped too: runc refuses this rule.
            if rule.action == "SCMP_ACT_NOTIFY", rule.names.contains("write") {
                throw RuntimeError("config.json: linux.seccomp.syscalls[\(i)]: SCMP_ACT_NOTIFY cannot be used for the write syscall")
            }
            for arg in rule.args ?? [] where ops[arg.op] == nil || arg.index > 5 {
                throw RuntimeError("config.json: linux.seccomp.syscalls[\(i)]: invalid argument condition \(arg.op) on index \(arg.index)")
            }
        }
    }

    /// A filter with notify rules is loaded during create (its listener must hold the fd before
    /// the process can make a notified call), others right before exec.
    static func usesNotify(_ s: Seccomp) -> Bool {
        (s.syscalls ?? []).contains { $0.action == "SCMP_ACT_NOTIFY" }
    }

    /// Builds the program with libseccomp (runc's ENOSYS stub in front) and the kernel flags
    /// to install it with. See SeccompProgram.prepare for the cached path.
    static func compile(_ s: Seccomp) throws -> SeccompProgram {
        let defaultAction = try action(s.defaultAction, errno: s.defaultErrnoRet)
        guard let ctx = seccomp_init(defaultAction) else { throw RuntimeError("seccomp_init failed") }
        defer { seccomp_release(ctx) }
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
        var code: UnsafeMutableRawPointer?
        var length: UInt32 = 0
        if cl_seccomp_export_with_stub(ctx, newSyscallBoundary(s, defaultAction: defaultAction), seccomp_arch_native(), &code, &length) != 0 {
            throw RuntimeError.sys("seccomp: build filter")
        }
        defer { free(code) }
        return SeccompProgram(code: Array(UnsafeRawBufferPointer(start: code, count: Int(length) * 8)), flags: kernelFlags(s), notify: usesNotify(s))
    }

    /// The seccomp(2) flags: the profile's, with NEW_LISTENER for notify rules. no_new_privs is
    /// the process's own setting (process.noNewPrivileges), not the filter's.
    static func kernelFlags(_ s: Seccomp) -> UInt32 {
        let asked = (s.flags ?? []).compactMap { flags[$0] }.reduce(0, |)
        return usesNotify(s) ? (asked & ~1) | newListenerFlag : asked  // TSYNC excludes a listener
    }

    /// Syscalls numbered above the newest one the profile names get ENOSYS, not the default
    /// action: the profile's author never saw them, and ENOSYS is what makes callers fall back
    /// to an older call (runc's rule). 0 (no stub) when the default allows or says ENOSYS.
    private static func newSyscallBoundary(_ s: Seccomp, defaultAction: UInt32) -> UInt32 {
        let allow: UInt32 = 0x7fff_0000, log: UInt32 = 0x7ffc_0000, enosys = 0x0005_0000 | UInt32(ENOSYS)
        guard ![allow, log, enosys].contains(defaultAction) else { return 0 }
        let numbers = (s.syscalls ?? []).flatMap(\.names).map { seccomp_syscall_resolve_name($0) }.filter { $0 >= 0 }
        return numbers.max().map { UInt32($0) } ?? 0
    }

    /// Hands the notify fd to `listenerPath` with the container's state, in runc's message
    /// shape: {"ociVersion","fds":["seccompFd"],"pid","metadata","state":{…}} plus SCM_RIGHTS.
    static func sendToListener(_ s: Seccomp, fd: Int32, state: HookState) throws {
        let sock: Int32
        do { sock = try ConsoleSocket.connect(s.listenerPath!) } catch let e as RuntimeError {
            // runc's words, which clients match.
            throw RuntimeError("failed to connect with seccomp agent specified in the seccomp profile: " + e.message)
        }
        defer { close(sock) }
        let message = ListenerMessage(ociVersion: state.ociVersion, fds: ["seccompFd"], pid: state.pid ?? 0,
                                      metadata: s.listenerMetadata ?? "", state: state)
        let json = String(decoding: try JSON.encode(message), as: UTF8.self)
        if cl_send_fd(sock, fd, json) != 0 { throw RuntimeError.sys("send seccomp fd to \(s.listenerPath!)") }
    }

    struct ListenerMessage: Encodable {
        let ociVersion: String
        let fds: [String]
        let pid: Int32
        let metadata: String
        let state: HookState
    }
}
