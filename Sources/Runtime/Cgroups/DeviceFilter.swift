import OCI

/// `linux.resources.devices` as a cgroup v2 device program: eBPF instructions, built here so
/// that no compiler is needed at run time. The kernel calls the program with
/// `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }` (access in the high
/// half of access_type, the device type in the low half) and allows the access when it returns 1.
///
/// The rules are tried last to first and the first that matches decides, which is what the
/// same list written to v1's devices.allow/deny means: a later rule overrides an earlier one.
/// An access no rule matches is denied.
public enum DeviceFilter {
    /// One eBPF instruction: opcode, destination and source registers, offset, immediate.
    public struct Instruction: Equatable, Sendable {
        public let code: UInt8, dst: UInt8, src: UInt8, off: Int16, imm: Int32

        /// The kernel's 8-byte `struct bpf_insn`, little-endian, dst in the low nibble.
        var bytes: [UInt8] {
            let o = UInt16(bitPattern: off), i = UInt32(bitPattern: imm)
            return [code, (src << 4) | (dst & 0xf), UInt8(o & 0xff), UInt8(o >> 8),
                    UInt8(i & 0xff), UInt8((i >> 8) & 0xff), UInt8((i >> 16) & 0xff), UInt8(i >> 24)]
        }

        static func loadWord(_ dst: UInt8, from src: UInt8, offset: Int16) -> Self { .init(code: 0x61, dst: dst, src: src, off: offset, imm: 0) }
        static func and32(_ dst: UInt8, _ imm: Int32) -> Self { .init(code: 0x54, dst: dst, src: 0, off: 0, imm: imm) }
        static func shiftRight32(_ dst: UInt8, _ imm: Int32) -> Self { .init(code: 0x74, dst: dst, src: 0, off: 0, imm: imm) }
        static func move(_ dst: UInt8, register src: UInt8) -> Self { .init(code: 0xbf, dst: dst, src: src, off: 0, imm: 0) }
        static func move(_ dst: UInt8, _ imm: Int32) -> Self { .init(code: 0xb7, dst: dst, src: 0, off: 0, imm: imm) }
        /// if dst != imm: skip `off` instructions.
        static func jumpIfNotEqual(_ dst: UInt8, _ imm: Int32, skip: Int16) -> Self { .init(code: 0x55, dst: dst, src: 0, off: skip, imm: imm) }
        static func jumpIfEqual(_ dst: UInt8, _ imm: Int32, skip: Int16) -> Self { .init(code: 0x15, dst: dst, src: 0, off: skip, imm: imm) }
        static let exit = Instruction(code: 0x95, dst: 0, src: 0, off: 0, imm: 0)
    }

    // Registers once the context is read: r2 type, r3 access, r4 major, r5 minor; r1 scratch.
    private static let typeReg: UInt8 = 2, accessReg: UInt8 = 3, majorReg: UInt8 = 4, minorReg: UInt8 = 5, scratch: UInt8 = 1

    /// The kernel's BPF_DEVCG_ACC_* bits and BPF_DEVCG_DEV_* types.
    static func accessBits(_ access: String?) -> Int32 {
        let letters = (access ?? "").isEmpty ? "rwm" : access!
        return (letters.contains("m") ? 1 : 0) | (letters.contains("r") ? 2 : 0) | (letters.contains("w") ? 4 : 0)
    }

    static func typeCode(_ type: String?) -> Int32? {
        switch type ?? "a" {
        case "c": return 2
        case "b": return 1
        default: return nil  // "a": any type
        }
    }

    /// The program for `rules` (already including runc's always-allowed ones, as v1 writes them).
    public static func program(_ rules: [DeviceRule]) -> [Instruction] {
        var out: [Instruction] = [
            .loadWord(typeReg, from: 1, offset: 0), .and32(typeReg, 0xffff),
            .loadWord(accessReg, from: 1, offset: 0), .shiftRight32(accessReg, 16),
            .loadWord(majorReg, from: 1, offset: 4), .loadWord(minorReg, from: 1, offset: 8),
        ]
        for rule in rules.reversed() where rule.type != "p" {
            let block = ruleBlock(rule)
            out += block
            // A rule matching everything ends the program: the verifier refuses unreachable code.
            if block.count == 2 { return out }
        }
        return out + [.move(0, 0), .exit]
    }

    /// Tests on type, access, major and minor, each jumping past the block when it fails, then
    /// the rule's verdict.
    private static func ruleBlock(_ rule: DeviceRule) -> [Instruction] {
        enum Test { case equal(UInt8, Int32), accessWithin(Int32), accessOverlaps(Int32) }
        var tests: [Test] = []
        if let t = typeCode(rule.type) { tests.append(.equal(typeReg, t)) }
        let access = accessBits(rule.access)
        // An allow covers an access only if it names every bit asked for; a deny refuses any
        // access asking for one of its bits (as v1's exceptions match partially).
        if access != 7 { tests.append(rule.allow ? .accessWithin(access) : .accessOverlaps(access)) }
        if let major = rule.major, major >= 0 { tests.append(.equal(majorReg, Int32(truncatingIfNeeded: major))) }
        if let minor = rule.minor, minor >= 0 { tests.append(.equal(minorReg, Int32(truncatingIfNeeded: minor))) }
        let verdict: [Instruction] = [.move(0, rule.allow ? 1 : 0), .exit]
        var block: [Instruction] = []
        // Built backwards so each jump knows how many instructions follow it in the block.
        var following = verdict.count
        for test in tests.reversed() {
            switch test {
            case .equal(let reg, let value):
                block.insert(.jumpIfNotEqual(reg, value, skip: Int16(following)), at: 0)
                following += 1
            case .accessWithin(let allowed):
                // (access & ~allowed) must be 0: every bit asked for is one the rule names.
                block.insert(contentsOf: [.move(scratch, register: accessReg), .and32(scratch, ~allowed & 7),
                                          .jumpIfNotEqual(scratch, 0, skip: Int16(following))], at: 0)
                following += 3
            case .accessOverlaps(let denied):
                block.insert(contentsOf: [.move(scratch, register: accessReg), .and32(scratch, denied),
                                          .jumpIfEqual(scratch, 0, skip: Int16(following))], at: 0)
                following += 3
            }
        }
        return block + verdict
    }

    /// The program as the bytes bpf(BPF_PROG_LOAD) takes.
    public static func bytes(_ program: [Instruction]) -> [UInt8] { program.flatMap(\.bytes) }
}
