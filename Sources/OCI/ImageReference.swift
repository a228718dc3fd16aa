/// An image reference in docker's grammar: `[domain[:port]/]path[:tag][@sha256:hex]`, with
/// docker's normalization (`busybox` is `docker.io/library/busybox:latest`). Anything outside
/// the grammar (upper case in the path, `..`, spaces, control characters, over 255 characters
/// of name) is refused, so a name never breaks a table, a path or a log line.
public struct ImageReference: Sendable, Equatable, CustomStringConvertible {
    public var domain: String
    public var path: String
    public var tag: String?
    public var digest: String?

    /// The normalized form: domain/path[:tag][@digest], `:latest` when neither is given.
    public var description: String {
        var text = domain + "/" + path
        if let tag { text += ":" + tag }
        if let digest { text += "@" + digest }
        return text
    }

    public init(parsing text: String) throws(ReferenceError) {
        guard !text.isEmpty else { throw ReferenceError("an image reference must not be empty") }
        guard text.count <= 512, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw ReferenceError("invalid reference format: \(ReferenceError.shown(text)) has spaces, control or non-ASCII characters, or is too long")
        }
        var rest = Substring(text)
        if let at = rest.firstIndex(of: "@") {
            let d = String(rest[rest.index(after: at)...])
            let hex = d.hasPrefix("sha256:") ? d.dropFirst(7) : ""
            guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                throw ReferenceError("invalid reference format: digest \(d) is not sha256:<64 lower-case hex digits>")
            }
            digest = d
            rest = rest[..<at]
        }
        // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
        let lastSlash = rest.lastIndex(of: "/") ?? rest.startIndex
        if let colon = rest[lastSlash...].lastIndex(of: ":") {
            let t = String(rest[rest.index(after: colon)...])
            guard ImageReference.validTag(t) else { throw ReferenceError("invalid reference format: tag \(t) (letters, digits, '_', '.', '-'; at most 128)") }
            tag = t
            rest = rest[..<colon]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if components.count > 1, let first = components.first, first.contains(".") || first.contains(":") || first == "localhost" {
            guard ImageReference.validDomain(first) else { throw ReferenceError("invalid reference format: registry \(first)") }
            domain = first
            components.removeFirst()
        } else {
            domain = "docker.io"
        }
        if domain == "docker.io" && components.count == 1 { components.insert("library", at: 0) }
        for c in components where !ImageReference.validComponent(c) {
            throw ReferenceError("invalid reference format: \(ReferenceError.shown(c)) (repository names are lower-case letters and digits, separated by '.', '_', '__' or '-')")
        }
        path = components.joined(separator: "/")
        guard domain.count + 1 + path.count <= 255 else { throw ReferenceError("invalid reference format: repository name longer than 255 characters") }
        if tag == nil && digest == nil { tag = "latest" }
    }

    /// The normalized text of a reference, or the error saying what is wrong with it.
    public static func normalize(_ text: String) throws(ReferenceError) -> String { try ImageReference(parsing: text).description }

    static func validTag(_ t: String) -> Bool {
        guard let first = t.first, t.count <= 128, first.isASCII, first.isLetter || first.isNumber || first == "_" else { return false }
        return t.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
    }

    static func validComponent(_ c: String) -> Bool {
        let b = Array(c.utf8)
        func alnum(_ x: UInt8) -> Bool { (x >= 0x61 && x <= 0x7a) || (x >= 0x30 && x <= 0x39) }
        guard let first = b.first, let last = b.last, alnum(first), alnum(last) else { return false }
        var i = 0
        while i < b.count {
            if alnum(b[i]) { i += 1; continue }
            // Separators: '.', '_', '__', or any run of '-'; always between alphanumerics.
            var j = i
            while j < b.count && !alnum(b[j]) { j += 1 }
            let sep = b[i..<j]
            let ok = sep.elementsEqual([0x2e]) || sep.elementsEqual([0x5f]) || sep.elementsEqual([0x5f, 0x5f]) || sep.allSatisfy { $0 == 0x2d }
            guard ok else { return false }
            i = j
        }
        return true
    }

    static func validDomain(_ d: String) -> Bool {
        let parts = d.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 2 { guard let port = Int(parts[1]), (1...65535).contains(port) else { return false } }
        let labels = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        return !labels.isEmpty && labels.allSatisfy { l in
            !l.isEmpty && l.count <= 63 && l.first != "-" && l.last != "-" && l.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}

/// Why a text is not an image reference.
public struct ReferenceError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// At most 64 characters of a rejected text, control characters escaped: safe to print.
    public static func shown(_ text: String) -> String {
        let escaped = text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined()
        return "\"" + (escaped.count > 64 ? escaped.prefix(64) + "…" : escaped) + "\""
    }
}
