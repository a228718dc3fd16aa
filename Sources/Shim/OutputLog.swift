@preconcurrency import Glibc
import Wire

/// The container's output on disk: one JSON object per line, `{"time","stream","log"}` as
/// docker's json-file writes it, `"partial":true` on a piece without its newline, and `"b64"`
/// instead of `"log"` for bytes that are not UTF-8, so no byte is lost. Rotates by size.
final class OutputLog {
    let path: String
    let maxSize: Int
    let maxFiles: Int
    private var fd: Int32
    private var size: Int
    /// Bytes of an unfinished line, per stream.
    private var pending: [String: [UInt8]] = [:]
    /// A line longer than this is written as partial pieces.
    static let maxLine = 16 * 1024

    init(path: String, maxSize: Int, maxFiles: Int) throws(ShimError) {
        self.path = path
        self.maxSize = maxSize
        self.maxFiles = maxFiles
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        if fd < 0 { throw ShimError.sys("open log \(path)") }
        var st = stat()
        fstat(fd, &st)
        size = Int(st.st_size)
    }

    /// Logs a chunk read from `stream`; returns the records written (for followers).
    @discardableResult
    func append(stream: String, _ bytes: ArraySlice<UInt8>) -> [[UInt8]] {
        var records: [[UInt8]] = []
        let time = Timestamp.now()
        var line = pending.removeValue(forKey: stream) ?? []
        var rest = bytes
        while !rest.isEmpty {
            let room = OutputLog.maxLine - line.count
            let window = rest.prefix(room)
            if let nl = window.firstIndex(of: 0x0a) {
                line.append(contentsOf: rest[rest.startIndex...nl])
                rest = rest[(nl + 1)...]
                records.append(OutputLog.record(time: time, stream: stream, line[...], partial: false))
                line.removeAll(keepingCapacity: true)
            } else {
                line.append(contentsOf: window)
                rest = rest[window.endIndex...]
                if line.count >= OutputLog.maxLine {
                    records.append(OutputLog.record(time: time, stream: stream, line[...], partial: true))
                    line.removeAll(keepingCapacity: true)
                }
            }
        }
        if !line.isEmpty { pending[stream] = line }
        write(records)
        return records
    }

    /// At the end of a stream: what is left of its last line, flagged partial.
    @discardableResult
    func finish(stream: String) -> [[UInt8]] {
        guard let rest = pending.removeValue(forKey: stream), !rest.isEmpty else { return [] }
        let records = [OutputLog.record(time: Timestamp.now(), stream: stream, rest[...], partial: true)]
        write(records)
        return records
    }

    private func write(_ records: [[UInt8]]) {
        guard !records.isEmpty else { return }
        var chunk: [UInt8] = []
        chunk.reserveCapacity(records.reduce(0) { $0 + $1.count })
        for r in records {
            if maxSize > 0, size + chunk.count + r.count > maxSize, size + chunk.count > 0 {
                flush(&chunk)
                rotate()
            }
            chunk.append(contentsOf: r)
        }
        flush(&chunk)
    }

    private func flush(_ chunk: inout [UInt8]) {
        var done = 0
        while done < chunk.count {
            let n = chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 { if errno == EINTR { continue }; break }
            done += n
        }
        if done < chunk.count && done > 0 {
            // The disk is full: take back the torn piece, so the file stays whole records
            // (these records are lost; later ones are written once there is room again).
            if ftruncate(fd, off_t(size)) == 0 { done = 0 }
        }
        size += done
        chunk.removeAll(keepingCapacity: true)
    }

    /// log -> log.1 -> log.2 ...; the oldest beyond maxFiles is dropped.
    private func rotate() {
        Glibc.close(fd)
        if maxFiles > 1 {
            unlink("\(path).\(maxFiles - 1)")
            for k in stride(from: maxFiles - 2, through: 1, by: -1) { rename("\(path).\(k)", "\(path).\(k + 1)") }
            rename(path, "\(path).1")
        } else {
            unlink(path)
        }
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        size = 0
    }

    func close() { if fd >= 0 { Glibc.close(fd); fd = -1 } }

    /// One record line, newline included.
    static func record(time: String, stream: String, _ bytes: ArraySlice<UInt8>, partial: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 80)
        out.append(contentsOf: "{\"time\":\"".utf8)
        out.append(contentsOf: time.utf8)
        out.append(contentsOf: "\",\"stream\":\"".utf8)
        out.append(contentsOf: stream.utf8)
        if isUTF8(bytes) {
            out.append(contentsOf: "\",\"log\":".utf8)
            JSONValue.writeString(bytes, to: &out)
        } else {
            out.append(contentsOf: "\",\"b64\":\"".utf8)
            out.append(contentsOf: Base64.encode(bytes).utf8)
            out.append(UInt8(ascii: "\""))
        }
        if partial { out.append(contentsOf: ",\"partial\":true".utf8) }
        out.append(contentsOf: "}\n".utf8)
        return out
    }

    static func isUTF8(_ bytes: ArraySlice<UInt8>) -> Bool {
        if bytes.allSatisfy({ $0 < 0x80 }) { return true }
        var decoder = UTF8()
        var it = bytes.makeIterator()
        while true {
            switch decoder.decode(&it) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    /// The log files oldest first (rotated ones, then the live one).
    func files() -> [String] { LogFileReader.files(of: path, keep: maxFiles) }
}
