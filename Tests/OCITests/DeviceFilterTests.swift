import OCI
@testable import Runtime
import Testing

/// The device program, run by a small interpreter of the instructions DeviceFilter emits, over
/// a table of accesses: what the kernel would decide, without a kernel.
@Suite("device filter") struct DeviceFilterTests {
    /// A device access as the kernel passes it: type (1 block, 2 char), access bits (1 mknod,
    /// 2 read, 4 write), major, minor.
    struct Access { let type: UInt32, access: UInt32, major: UInt32, minor: UInt32 }

    /// Executes the program; nil if it uses an instruction DeviceFilter should never emit,
    /// jumps out of range or falls off its end.
    func run(_ program: [DeviceFilter.Instruction], _ a: Access) -> Int64? {
        var r = [Int64](repeating: 0, count: 11)
        let context = [(a.access << 16) | a.type, a.major, a.minor]
        var pc = 0
        while pc < program.count {
            let i = program[pc]
            pc += 1
            switch i.code {
            case 0x61: r[Int(i.dst)] = Int64(context[Int(i.off) / 4])
            case 0x54: r[Int(i.dst)] = Int64(UInt32(truncatingIfNeeded: r[Int(i.dst)]) & UInt32(bitPattern: i.imm))
            case 0x74: r[Int(i.dst)] = Int64(UInt32(truncatingIfNeeded: r[Int(i.dst)]) >> UInt32(i.imm))
            case 0xbf: r[Int(i.dst)] = r[Int(i.src)]
            case 0xb7: r[Int(i.dst)] = Int64(i.imm)
            case 0x55: if r[Int(i.dst)] != Int64(i.imm) { pc += Int(i.off) }
            case 0x15: if r[Int(i.dst)] == Int64(i.imm) { pc += Int(i.off) }
            case 0x95: return r[0]
            default: return nil
            }
            if pc > program.count { return nil }
        }
        return nil
    }

    static let read: UInt32 = 2, write: UInt32 = 4, mknod: UInt32 = 1, char: UInt32 = 2, block: UInt32 = 1

    @Test func denyAllThenAllowSome() {
        let rules = [DeviceRule(allow: false, access: "rwm"),
                     DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "rw"),
                     DeviceRule(allow: true, type: "c", major: 1, minor: 5, access: "r")]
        let p = DeviceFilter.program(rules)
        let s = Self.self
        #expect(run(p, Access(type: s.char, access: s.read | s.write, major: 1, minor: 3)) == 1)
        #expect(run(p, Access(type: s.char, access: s.mknod, major: 1, minor: 3)) == 0)
        #expect(run(p, Access(type: s.char, access: s.read, major: 1, minor: 5)) == 1)
        #expect(run(p, Access(type: s.char, access: s.write, major: 1, minor: 5)) == 0)
        #expect(run(p, Access(type: s.block, access: s.read, major: 1, minor: 3)) == 0)
        #expect(run(p, Access(type: s.block, access: s.read, major: 8, minor: 0)) == 0)
        // The unconditional deny ends the program: nothing after it (the verifier refuses dead code).
        #expect(p.last == .exit && p.dropLast().last == DeviceFilter.Instruction(code: 0xb7, dst: 0, src: 0, off: 0, imm: 0))
    }

    @Test func laterRulesOverrideEarlier() {
        let rules = [DeviceRule(allow: true, access: "rwm"), DeviceRule(allow: false, type: "c", major: 1, minor: 11, access: "w"),
                     DeviceRule(allow: false, type: "b")]
        let p = DeviceFilter.program(rules)
        let s = Self.self
        #expect(run(p, Access(type: s.char, access: s.read, major: 1, minor: 11)) == 1)
        #expect(run(p, Access(type: s.char, access: s.write, major: 1, minor: 11)) == 0)
        #expect(run(p, Access(type: s.char, access: s.read | s.write, major: 1, minor: 11)) == 0,
                "a deny of w refuses an access asking r and w")
        #expect(run(p, Access(type: s.block, access: s.read, major: 8, minor: 0)) == 0)
        #expect(run(p, Access(type: s.char, access: s.write, major: 4, minor: 1)) == 1)
    }

    @Test func wildcardsAndDefaults() {
        // runc's always-allowed rules after a deny-all: mknod of anything, /dev/pts/* by major.
        let p = DeviceFilter.program([DeviceRule(allow: false, access: "rwm")] + ResourceWrites.alwaysAllowedDevices)
        let s = Self.self
        #expect(run(p, Access(type: s.block, access: s.mknod, major: 8, minor: 0)) == 1)
        #expect(run(p, Access(type: s.char, access: s.read | s.write, major: 136, minor: 7)) == 1)
        #expect(run(p, Access(type: s.char, access: s.read | s.write, major: 5, minor: 2)) == 1)
        #expect(run(p, Access(type: s.char, access: s.read, major: 1, minor: 11)) == 0)
        // No rules at all: everything denied (the caller attaches no program for an empty list).
        #expect(run(DeviceFilter.program([]), Access(type: s.char, access: s.read, major: 1, minor: 3)) == 0)
    }

    @Test func encoding() {
        let i = DeviceFilter.Instruction(code: 0x55, dst: 4, src: 1, off: -2, imm: -1)
        #expect(i.bytes == [0x55, 0x14, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff])
        #expect(DeviceFilter.bytes(DeviceFilter.program([])).count % 8 == 0)
    }
}
