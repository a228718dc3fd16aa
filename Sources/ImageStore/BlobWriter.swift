import CLinux
import Foundation

/// A blob arriving in pieces (a registry download), kept at `ingest/<hex>.partial` so an
/// interrupted pull resumes where it stopped (the bytes already there are hashed again). It
/// gets its real name only once its size and digest are right: never a half blob under a real
/// name, and a blob that is wrong is dropped whole.
public final class BlobWriter {
    public let digest: String
    public let size: Int64
    public private(set) var written: Int64 = 0
    private let store: ContentStore
    private let partial: String
    private var fd: Int32
    private var hash = SHA256()

    /// Opens (or reopens, to resume) the partial file of `digest`, which declares `size` bytes.
    public init(store: ContentStore, digest: String, size: Int64) throws {
        self.store = store
        self.digest = digest
        self.size = size
        partial = store.root + "/ingest/" + (try ContentStore.hex(digest)) + ".partial"
        fd = open(partial, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ImageError("open \(partial): \(String(cString: strerror(errno)))") }
        try rehashExisting()
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Hashes what an earlier attempt wrote; more than the declared size starts over.
    private func rehashExisting() throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
        defer { buffer.deallocate() }
        lseek(fd, 0, SEEK_SET)
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n < 0 { if errno == EINTR { continue }; throw ImageError("read \(partial): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            hash.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            written += Int64(n)
        }
        if written > size { try restart() }
    }

    /// Drops what is there: the registry sent the whole blob instead of the range asked for.
    public func restart() throws {
        guard ftruncate(fd, 0) == 0 else { throw ImageError("truncate \(partial): \(String(cString: strerror(errno)))") }
        lseek(fd, 0, SEEK_SET)
        hash = SHA256()
        written = 0
    }

    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard written + Int64(bytes.count) <= size else {
            discard()
            throw ImageError("blob \(digest): the registry sent more than its declared \(size) bytes")
        }
        var done = 0
        while done < bytes.count {
            let w = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if w < 0 { if errno == EINTR { continue }; throw ImageError("write \(partial): \(String(cString: strerror(errno)))") }
            done += w
        }
        hash.update(bytes)
        written += Int64(bytes.count)
    }

    /// Verifies size and digest and gives the blob its name; a wrong blob is removed.
    public func commit() throws {
        guard written == size else { throw ImageError("blob \(digest): \(written) of \(size) bytes arrived") }
        let actual = "sha256:" + hash.finish()
        guard actual == digest else {
            discard()
            throw ImageError("digest mismatch: expected \(digest), the registry sent \(actual)")
        }
        fsync(fd)
        close(fd)
        fd = -1
        guard rename(partial, try store.path(digest)) == 0 else { throw ImageError("store blob \(digest): \(String(cString: strerror(errno)))") }
    }

    /// Removes the partial file.
    public func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(partial)
    }
}
