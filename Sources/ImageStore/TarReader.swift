/// One member of a tar archive, with ustar, GNU long-name and PAX (path, linkpath, size,
/// xattrs) headers already folded in.
public struct TarEntry {
    /// The entry types the unpacker distinguishes (tar's typeflag).
    public enum Kind: Equatable { case file, hardlink, symlink, charDevice, blockDevice, directory, fifo, other(UInt8) }
    public var path = ""
    public var linkTarget = ""
    public var kind = Kind.file
    public var mode: UInt32 = 0
    public var uid = 0
    public var gid = 0
    public var size = 0
    public var mtime = 0
    public var xattrs: [(String, [UInt8])] = []
}

/// Reads a tar stream entry by entry without seeking: layers arrive through gzip.
/// Every header's checksum is verified, so a corrupt archive fails instead of unpacking junk.
public final class TarReader {
    private let source: ByteSource
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var start = 0
    private var end = 0
    /// Data bytes of the current entry not yet read, and the padding after them.
    private var remaining = 0
    private var padding = 0

    public init(_ source: ByteSource) { self.source = source }

    /// The next entry, or nil at the end of the archive.
    public func next() throws -> TarEntry? {
        try skip(remaining + padding)
        remaining = 0; padding = 0
        var pax: [String: [UInt8]] = [:]
        var longName: String?, longLink: String?
        while true {
            guard let header = try readBlock() else { return nil }
            if header.allSatisfy({ $0 == 0 }) { return nil }
            guard TarReader.checksumOK(header) else { throw ImageError("tar header checksum mismatch: not a tar archive, or corrupt") }
            var entry = TarEntry()
            let type = header[156]
            entry.size = try TarReader.number(header[124..<136])
            switch type {
            case UInt8(ascii: "x"):
                pax.merge(TarReader.paxRecords(try readData(entry.size))) { $1 }
                continue
            case UInt8(ascii: "g"):
                _ = try readData(entry.size)
                continue
            case UInt8(ascii: "L"):
                longName = TarReader.string(try readData(entry.size)[...])
                continue
            case UInt8(ascii: "K"):
                longLink = TarReader.string(try readData(entry.size)[...])
                continue
            default: break
            }
            let name = TarReader.string(header[0..<100]), prefix = TarReader.string(header[345..<500])
            let isUstar = header[257..<262].elementsEqual("ustar".utf8)
            entry.path = longName ?? (isUstar && !prefix.isEmpty ? prefix + "/" + name : name)
            entry.linkTarget = longLink ?? TarReader.string(header[157..<257])
            entry.mode = UInt32(truncatingIfNeeded: try TarReader.number(header[100..<108]))
            entry.uid = try TarReader.number(header[108..<116])
            entry.gid = try TarReader.number(header[116..<124])
            entry.mtime = try TarReader.number(header[136..<148])
            if let p = pax["path"] { entry.path = String(decoding: p, as: UTF8.self) }
            if let l = pax["linkpath"] { entry.linkTarget = String(decoding: l, as: UTF8.self) }
            if let s = pax["size"], let n = Int(String(decoding: s, as: UTF8.self)) { entry.size = n }
            if let u = pax["uid"], let n = Int(String(decoding: u, as: UTF8.self)) { entry.uid = n }
            if let g = pax["gid"], let n = Int(String(decoding: g, as: UTF8.self)) { entry.gid = n }
            entry.xattrs = pax.filter { $0.key.hasPrefix("SCHILY.xattr.") }.map { (String($0.key.dropFirst(13)), $0.value) }
                .sorted { $0.0 < $1.0 }
            switch type {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): entry.kind = .file
            case UInt8(ascii: "1"): entry.kind = .hardlink
            case UInt8(ascii: "2"): entry.kind = .symlink
            case UInt8(ascii: "3"): entry.kind = .charDevice
            case UInt8(ascii: "4"): entry.kind = .blockDevice
            case UInt8(ascii: "5"): entry.kind = .directory
            case UInt8(ascii: "6"): entry.kind = .fifo
            default: entry.kind = .other(type)
            }
            if entry.kind == .file && entry.path.hasSuffix("/") && type == 0 { entry.kind = .directory }
            guard entry.size >= 0 else { throw ImageError("tar entry \(entry.path): negative size") }
            let hasData = entry.kind == .file || { if case .other = entry.kind { return true } else { return false } }()
            remaining = hasData ? entry.size : 0
            padding = hasData ? (512 - entry.size % 512) % 512 : 0
            if !hasData && entry.size > 0 { padding = (entry.size + 511) / 512 * 512 }
            return entry
        }
    }

    /// Reads the current entry's data; 0 at its end.
    public func read(into out: UnsafeMutableRawBufferPointer) throws -> Int {
        guard remaining > 0 else { return 0 }
        if start == end { try fill() }
        let n = min(out.count, end - start, remaining)
        buffer.withUnsafeBytes { out.baseAddress!.copyMemory(from: $0.baseAddress! + start, byteCount: n) }
        start += n
        remaining -= n
        return n
    }

    private func fill() throws {
        start = 0
        end = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
        if end == 0 { throw ImageError("tar archive truncated") }
    }

    private func readBlock() throws -> [UInt8]? {
        var block: [UInt8] = []
        block.reserveCapacity(512)
        while block.count < 512 {
            if start == end {
                start = 0
                end = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
                if end == 0 {
                    if block.isEmpty { return nil }
                    throw ImageError("tar archive truncated")
                }
            }
            let n = min(512 - block.count, end - start)
            block.append(contentsOf: buffer[start..<start + n])
            start += n
        }
        return block
    }

    private func readData(_ size: Int) throws -> [UInt8] {
        guard size <= 16 << 20 else { throw ImageError("tar extended header of \(size) bytes") }
        var out: [UInt8] = []
        while out.count < size {
            if start == end { try fill() }
            let n = min(size - out.count, end - start)
            out.append(contentsOf: buffer[start..<start + n])
            start += n
        }
        try skip((512 - size % 512) % 512)
        return out
    }

    private func skip(_ count: Int) throws {
        var left = count
        while left > 0 {
            if start == end { try fill() }
            let n = min(left, end - start)
            start += n
            left -= n
        }
    }

    static func checksumOK(_ header: [UInt8]) -> Bool {
        guard let stored = try? number(header[148..<156]) else { return false }
        var sum = 0
        for (i, b) in header.enumerated() { sum += (148..<156).contains(i) ? 0x20 : Int(b) }
        return sum == stored
    }

    /// Octal (NUL/space padded), or base-256 when the high bit of the first byte is set.
    static func number(_ field: ArraySlice<UInt8>) throws -> Int {
        if let first = field.first, first & 0x80 != 0 {
            var n = Int(first & 0x7f)
            for b in field.dropFirst() { n = n << 8 | Int(b) }
            return n
        }
        var n = 0, seen = false
        for b in field {
            if b == 0 || b == 0x20 { if seen { break } else { continue } }
            guard (0x30...0x37).contains(b) else { throw ImageError("tar header: bad number") }
            n = n * 8 + Int(b - 0x30)
            seen = true
        }
        return n
    }

    static func string(_ field: ArraySlice<UInt8>) -> String {
        String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// "LEN key=value\n" records.
    static func paxRecords(_ data: [UInt8]) -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        var i = 0
        while i < data.count {
            guard let space = data[i...].firstIndex(of: 0x20), let len = Int(String(decoding: data[i..<space], as: UTF8.self)),
                  len > 0, i + len <= data.count else { break }
            let record = data[(space + 1)..<(i + len - 1)]
            if let eq = record.firstIndex(of: UInt8(ascii: "=")) {
                out[String(decoding: record[..<eq], as: UTF8.self)] = Array(record[(eq + 1)...])
            }
            i += len
        }
        return out
    }
}
