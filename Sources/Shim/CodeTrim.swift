@preconcurrency import Glibc

/// Gives back the shim's mapped code pages while it idles. A static Swift binary maps ~3.4 MB
/// of text by the time the container runs (start-up, the runtime calls, and the kernel maps
/// 16 pages around each fault), while an idle shim runs none of it. The pages are clean page
/// cache shared by every shim either way; unmapping them makes each idle shim's RSS what it
/// holds, and the next event faults back what it runs. Only the executable's read-execute
/// mappings are touched: they are never written (data and relocated read-only pages keep
/// their contents).
enum CodeTrim {
    static func releaseMappedCode() {
        guard let maps = TextFile.read("/proc/self/maps"), let exe = executablePath() else { return }
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "r-xp", fields[5] == exe else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16), end > start,
                  let address = UnsafeMutableRawPointer(bitPattern: start) else { continue }
            let length = Int(end - start)
            _ = madvise(address, length, MADV_DONTNEED)
        }
    }

    private static func executablePath() -> Substring? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return Substring(String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}
