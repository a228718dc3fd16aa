import Crypto

/// SHA-256, streaming, through swift-crypto (BoringSSL's implementation): every blob is
/// verified against its digest as it is copied in, and layer diff IDs are hashed while they
/// unpack. A thin shape over `Crypto.SHA256` so the store's callers name one type.
public struct SHA256 {
    private var hasher = Crypto.SHA256()

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The digest as lowercase hex. The hasher is spent afterwards.
    public mutating func finish() -> String { SHA256.hexText(hasher.finalize()) }

    /// The digest of bytes in memory, for chain IDs and small documents.
    public static func hex(_ bytes: [UInt8]) -> String { hexText(Crypto.SHA256.hash(data: bytes)) }

    private static func hexText(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in digest { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
