@preconcurrency import Glibc
import OCI
import Runtime

/// Output in runc's shapes: `state` as Go's indented JSON, `list` as a tab-aligned table or
/// one compact JSON array.
enum Output {
    static func print(_ text: String) { write(text, to: 1) }

    static func printError(_ text: String) { write(text, to: 2) }

    private static func write(_ text: String, to fd: Int32) {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { if errno == EINTR { continue }; return }
            off += n
        }
    }

    static func fields(_ s: ContainerState) -> [(String, String)] {
        var f: [(String, String)] = [
            ("ociVersion", Log.quote(s.ociVersion)), ("id", Log.quote(s.id)), ("pid", String(s.pid)),
            ("status", Log.quote(s.status)), ("bundle", Log.quote(s.bundle)), ("rootfs", Log.quote(s.rootfs)),
            ("created", Log.quote(s.created)),
        ]
        if let a = s.annotations, !a.isEmpty {
            f.append(("annotations", "{" + a.keys.sorted().map { "\(Log.quote($0)):\(Log.quote(a[$0]!))" }.joined(separator: ",") + "}"))
        }
        f.append(("owner", Log.quote(s.owner)))
        return f
    }

    static func stateJSON(_ s: ContainerState) -> String {
        "{\n" + fields(s).map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}\n"
    }

    static func compactJSON(_ s: ContainerState) -> String {
        "{" + fields(s).map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    /// Go's tabwriter with minwidth 12, padding 3: each column as wide as its widest cell + 3.
    static func table(_ rows: [[String]]) -> String {
        guard let cols = rows.first?.count else { return "" }
        var widths = [Int](repeating: 0, count: cols)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], max(12, c.count + 3)) } }
        return rows.map { r in
            r.enumerated().map { i, c in i == cols - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count) }.joined()
        }.joined(separator: "\n") + "\n"
    }
}
