import CZlib
import Glibc

/// Something bytes are read from, in order: a file, or a gzip stream over one.
public protocol ByteSource: AnyObject {
    /// Fills up to `buffer.count` bytes; 0 at the end. Throws on I/O or format errors.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Why an image or layer could not be read.
public struct ImageError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A file, read through its fd (closed with the source).
public final class FileSource: ByteSource {
    let fd: Int32
    public init(path: String) throws {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ImageError("open \(path): \(String(cString: strerror(errno)))") }
    }
    deinit { close(fd) }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno != EINTR { throw ImageError("read: \(String(cString: strerror(errno)))") }
        }
    }

    /// The first bytes of a file (for sniffing gzip's magic).
    public static func peek(_ path: String, count: Int) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: count)
        let n = Glibc.read(fd, &buf, count)
        return n > 0 ? Array(buf[0..<n]) : []
    }
}

/// A gzip stream (one or more members) decoded with zlib as it is read.
public final class GzipSource: ByteSource {
    private let inner: ByteSource
    private var stream = z_stream()
    private let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 128 * 1024, alignment: 16)
    private var finished = false

    public init(_ inner: ByteSource) throws {
        self.inner = inner
        // 15 window bits + 16: gzip framing only.
        let rc = inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        if rc != Z_OK { throw ImageError("zlib init failed (\(rc))") }
    }
    deinit { inflateEnd(&stream); input.deallocate() }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !finished, buffer.count > 0 else { return 0 }
        stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(buffer.count)
        while stream.avail_out > 0 {
            if stream.avail_in == 0 {
                let n = try inner.read(into: input)
                if n == 0 {
                    if buffer.count - Int(stream.avail_out) > 0 { break }
                    throw ImageError("gzip stream truncated")
                }
                stream.avail_in = uInt(n)
                stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
            }
            let rc = inflate(&stream, Z_NO_FLUSH)
            if rc == Z_STREAM_END {
                // Another member may follow (concatenated gzip); else this is the end.
                if stream.avail_in == 0 {
                    let n = try inner.read(into: input)
                    if n == 0 { finished = true; break }
                    stream.avail_in = uInt(n)
                    stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                }
                inflateReset(&stream)
                continue
            }
            if rc != Z_OK && rc != Z_BUF_ERROR { throw ImageError("gzip data is corrupt (zlib \(rc))") }
            if rc == Z_BUF_ERROR && stream.avail_in > 0 { throw ImageError("gzip data is corrupt") }
        }
        return buffer.count - Int(stream.avail_out)
    }
}

/// Passes bytes through while hashing them: the diff ID of a layer as it unpacks.
public final class HashingSource: ByteSource {
    private let inner: ByteSource
    public private(set) var hash = SHA256()
    public private(set) var count = 0

    public init(_ inner: ByteSource) { self.inner = inner }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try inner.read(into: buffer)
        if n > 0 { hash.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n])); count += n }
        return n
    }

    /// Reads the rest (tar's trailing padding), so the digest covers the whole stream.
    public func digest() throws -> String {
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        while try buf.withUnsafeMutableBytes({ try read(into: $0) }) > 0 {}
        var h = hash
        return "sha256:" + h.finish()
    }
}
