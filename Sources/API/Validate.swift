import OCI

/// The rules for names and labels that clients give, in one place: the daemon checks every
/// request against them, so nothing unbounded or unprintable reaches a table, a path or the store.
public enum Validate {
    /// Container and volume names, as docker's: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 128.
    public static func name(_ text: String, field: String) throws(APIError) {
        guard let first = text.first, text.count <= 128, first.isASCII, first.isLetter || first.isNumber,
              text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }) else {
            throw .params("\(field): \(ReferenceError.shown(text)) is not a valid name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128 characters)")
        }
    }

    /// A host name or DNS label list: letters, digits, '-', '_' and '.', at most 253.
    public static func hostName(_ text: String, field: String) throws(APIError) {
        guard !text.isEmpty, text.utf8.count <= 253, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw .params("\(field): \(ReferenceError.shown(text)) is not a host name")
        }
    }

    /// Namespaces, as containerd's: alphanumeric words joined by '.', '_' or '-', at most 76.
    public static func namespace(_ text: String) throws(APIError) {
        let words = text.split(omittingEmptySubsequences: false) { "._-".contains($0) }
        guard !text.isEmpty, text.count <= 76, words.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } }) else {
            throw .params("namespace: \(ReferenceError.shown(text)) is not a valid namespace (letters and digits joined by '.', '_' or '-', at most 76)")
        }
    }

    /// Labels: keys of printable ASCII without '=', values without control characters; bounded.
    public static func labels(_ labels: [String: String]?, field: String = "labels") throws(APIError) {
        guard let labels else { return }
        guard labels.count <= 256 else { throw .params("\(field): at most 256 labels") }
        for (key, value) in labels {
            guard !key.isEmpty, key.utf8.count <= 255, key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != 0x3d }) else {
                throw .params("\(field): key \(ReferenceError.shown(key)) (printable ASCII without spaces or '=', at most 255)")
            }
            guard value.utf8.count <= 4096, !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
                throw .params("\(field).\(key): at most 4096 bytes without control characters")
            }
        }
    }

    /// `KEY=VALUE` environment entries: a key, no NUL, bounded.
    public static func env(_ entries: [String]?, field: String = "env") throws(APIError) {
        guard let entries else { return }
        guard entries.count <= 4096 else { throw .params("\(field): at most 4096 entries") }
        for (i, entry) in entries.enumerated() {
            let key = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
            guard entry.contains("="), !key.isEmpty, !entry.utf8.contains(0), entry.utf8.count <= 128 << 10 else {
                throw .params("\(field)[\(i)]: \(ReferenceError.shown(entry)) is not KEY=VALUE")
            }
        }
    }

    /// Arguments of a command: no NUL (it cannot reach execve), bounded in all.
    public static func command(_ args: [String]?, field: String) throws(APIError) {
        guard let args else { return }
        guard args.reduce(0, { $0 + $1.utf8.count }) <= 1 << 20, args.count <= 65536 else { throw .params("\(field): longer than 1 MiB") }
        for (i, a) in args.enumerated() where a.utf8.contains(0) { throw .params("\(field)[\(i)]: contains a NUL byte") }
    }

    /// A path inside the container: absolute, no NUL, bounded.
    public static func containerPath(_ path: String?, field: String) throws(APIError) {
        guard let path else { return }
        guard path.hasPrefix("/"), !path.utf8.contains(0), path.utf8.count <= 4096 else {
            throw .params("\(field): \(ReferenceError.shown(path)) is not an absolute path")
        }
    }

    /// Filters as docker's API takes them: `{"label":["a=b"],"status":["running"]}`; keys
    /// outside `allowed` are refused, values bounded.
    public static func filters(_ filters: Filters?, allowed: [String]) throws(APIError) {
        guard let filters else { return }
        for (key, values) in filters.sorted(by: { $0.key < $1.key }) {
            guard allowed.contains(key) else {
                throw .params("filters.\(key): unknown filter (\(allowed.joined(separator: ", ")))")
            }
            guard values.count <= 64, values.allSatisfy({ $0.utf8.count <= 512 }) else { throw .params("filters.\(key): at most 64 values of 512 bytes") }
        }
    }
}
