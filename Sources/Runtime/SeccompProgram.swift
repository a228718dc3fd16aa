@preconcurrency import Glibc
import CLinux
import FoundationEssentials
import OCI

/// A compiled seccomp filter: classic BPF instructions (8 bytes each) and the flags to install
/// it with. Built by srunc before it clones the process, which installs it as its last step:
/// the process inherits the bytes, and the create-to-exec path runs no libseccomp.
struct SeccompProgram: Sendable {
    let code: [UInt8]
    let flags: UInt32
    /// The filter has SCMP_ACT_NOTIFY rules: installing it returns a listener fd.
    let notify: Bool

    /// Installs the filter in the calling process; the notify fd when it has notify rules.
    @discardableResult
    func install() throws -> Int32? {
        let r = code.withUnsafeBytes { cl_seccomp_install($0.baseAddress, UInt32($0.count / 8), flags) }
        if r < 0 { throw RuntimeError.sys("seccomp: load filter") }
        return notify ? r : nil
    }

    /// The program for `seccomp`, from `cacheDir` when an earlier create compiled the same
    /// profile with the same libseccomp (docker's profile took libseccomp 5-6 ms to compile,
    /// each container). A cache entry holds the exact key it was made from, compared byte for
    /// byte, so a name collision can only cost a compile, never apply another filter.
    static func prepare(_ seccomp: Seccomp, cacheDir: String?) throws -> SeccompProgram {
        guard let cacheDir, let key = cacheKey(seccomp) else { return try SeccompFilter.compile(seccomp) }
        let path = cacheDir + "/" + fnv1a(key)
        if let code = cachedCode(path, key: key) {
            return SeccompProgram(code: code, flags: SeccompFilter.kernelFlags(seccomp), notify: SeccompFilter.usesNotify(seccomp))
        }
        let program = try SeccompFilter.compile(seccomp)
        store(program.code, key: key, dir: cacheDir, path: path)
        return program
    }

    /// What the program depends on: the profile as srunc reads it, libseccomp's version (its
    /// syscall table), and the native architecture. Flags are applied at install, not compiled.
    private static func cacheKey(_ s: Seccomp) -> [UInt8]? {
        var profile = s
        profile.flags = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys  // FoundationEssentials' key order differs run to run
        guard let json = try? encoder.encode(profile), let v = seccomp_version()?.pointee else { return nil }
        return Array("libseccomp \(v.major).\(v.minor).\(v.micro) arch \(seccomp_arch_native())\n".utf8) + json
    }

    /// Entry layout: key length (UInt32, little endian), key, instructions.
    private static func cachedCode(_ path: String, key: [UInt8]) -> [UInt8]? {
        guard let data = Files.read(path), data.count > 4 else { return nil }
        let keyLength = Int(data[0]) | Int(data[1]) << 8 | Int(data[2]) << 16 | Int(data[3]) << 24
        guard keyLength == key.count, data.count > 4 + keyLength, data[4..<(4 + keyLength)].elementsEqual(key) else { return nil }
        let code = Array(data[(4 + keyLength)...])
        return code.count % 8 == 0 && code.count / 8 <= 4096 ? code : nil
    }

    /// Written under a temporary name and renamed: a concurrent create reads a whole entry or
    /// none. Failure to cache is not an error.
    private static func store(_ code: [UInt8], key: [UInt8], dir: String, path: String) {
        mkdir(dir, 0o700)
        let n = UInt32(key.count)
        let bytes = [UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24)] + key + code
        let temporary = path + ".\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if written != bytes.count || rename(temporary, path) != 0 { unlink(temporary) }
    }

    private static func fnv1a(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
