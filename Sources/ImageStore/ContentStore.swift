import CLinux
import Foundation

/// Blobs by digest under `blobs/sha256/<hex>`. Every blob is hashed as it is copied in and
/// checked against the digest it claims; it is written to `ingest/` and renamed into place,
/// so a crash never leaves a partial blob under a real name.
public final class ContentStore: @unchecked Sendable {
    public let root: String

    public init(root: String) throws {
        self.root = root
        for dir in ["blobs/sha256", "ingest"] {
            try FileManager.default.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
        }
    }

    /// The path of a stored blob; throws for a digest that is not sha256 hex.
    public func path(_ digest: String) throws -> String {
        try root + "/blobs/sha256/" + ContentStore.hex(digest)
    }

    /// Whether the blob is stored (verified when it came in).
    public func has(_ digest: String) -> Bool {
        (try? path(digest)).map { FileManager.default.fileExists(atPath: $0) } ?? false
    }

    /// "sha256:<64 hex>" -> the hex; anything else is refused (it becomes a file name).
    public static func hex(_ digest: String) throws -> String {
        let parts = digest.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0] == "sha256", parts[1].count == 64,
              parts[1].allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw ImageError("unsupported digest \(digest)")
        }
        return String(parts[1])
    }

    /// Copies `source` in, verifying `expected` (and `size` when given); returns the digest.
    /// Without `expected`, the blob is stored under whatever digest it has.
    @discardableResult
    public func ingest(_ source: ByteSource, expected: String? = nil, size: Int64? = nil) throws -> String {
        if let expected, has(expected) {
            // Verified when it came in; a descriptor that declares another size is wrong.
            var st = stat()
            if let size, stat(try path(expected), &st) == 0, Int64(st.st_size) != size {
                throw ImageError("size mismatch for \(expected): the descriptor says \(size) bytes, the blob has \(st.st_size)")
            }
            return expected
        }
        let temp = root + "/ingest/" + UUID().uuidString
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { throw ImageError("create \(temp): \(String(cString: strerror(errno)))") }
        var hash = SHA256()
        var total: Int64 = 0
        do {
            defer { close(fd) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let n = try source.read(into: buffer)
                if n == 0 { break }
                hash.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                total += Int64(n)
                var done = 0
                while done < n {
                    let w = write(fd, buffer.baseAddress! + done, n - done)
                    if w < 0 { if errno == EINTR { continue }; throw ImageError("write blob: \(String(cString: strerror(errno)))") }
                    done += w
                }
            }
            fsync(fd)
        } catch {
            unlink(temp)
            throw error
        }
        let digest = "sha256:" + hash.finish()
        if let expected, digest != expected {
            unlink(temp)
            throw ImageError("digest mismatch: expected \(expected), content is \(digest)")
        }
        if let size, size != total {
            unlink(temp)
            throw ImageError("size mismatch for \(digest): expected \(size) bytes, got \(total)")
        }
        if rename(temp, try path(digest)) != 0 { unlink(temp); throw ImageError("store blob: \(String(cString: strerror(errno)))") }
        return digest
    }

    /// Small documents the importer writes itself (a docker-archive's manifest).
    public func ingest(data: Data, expected: String? = nil) throws -> String {
        try ingest(DataSource(data), expected: expected)
    }

    /// A whole small blob (manifests, configs); layers are streamed from `path`.
    public func read(_ digest: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: try path(digest)))
    }

    /// Drops a blob (garbage collection of unreferenced content).
    public func remove(_ digest: String) {
        if let p = try? path(digest) { unlink(p) }
    }
}

/// Bytes already in memory.
public final class DataSource: ByteSource {
    private let data: Data
    private var offset = 0
    public init(_ data: Data) { self.data = data }
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, data.count - offset)
        if n > 0 { data.copyBytes(to: buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), from: offset..<offset + n) }
        offset += n
        return n
    }
}
