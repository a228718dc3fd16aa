@preconcurrency import Glibc

/// How a shim was asked to run one container: what the daemon (or a person) passes on its
/// command line. The state directory holds the control socket, pid and exit files.
public struct ShimOptions: Sendable {
    public var id = ""
    public var bundle = ""
    public var runtime = ""
    public var runtimeRoot: String?
    public var stateDir = ""
    public var logPath = ""
    /// Rotate the log when it would grow past this many bytes; 0 never rotates.
    public var logMaxSize = 0
    /// Log files kept in all, the live one included (docker's max-file).
    public var logMaxFiles = 1
    public var terminal = false
    public var stdin = false

    public static let usage = """
        usage: sshim --id ID --bundle DIR --state-dir DIR --log FILE [--runtime PATH] [--runtime-root DIR]
                     [--terminal] [--stdin] [--log-max-size BYTES[k|m|g]] [--log-max-files N]
        Creates the container with the runtime (default: srunc beside sshim), prints its pid once it
        exists, and stays behind as its parent, serving JSON lines on DIR/control.sock.
        sshim ctl DIR METHOD [PARAMS_JSON] sends one request and prints the lines up to its reply.
        """

    public init() {}

    /// Parses the command line; the error says which flag is wrong.
    public init(arguments: [String]) throws(ShimError) {
        var args = arguments[...]
        func value(_ flag: String) throws(ShimError) -> String {
            guard let v = args.popFirst(), !v.isEmpty else { throw ShimError("\(flag) needs a value") }
            return v
        }
        while let arg = args.popFirst() {
            switch arg {
            case "--id": id = try value(arg)
            case "--bundle": bundle = try value(arg)
            case "--runtime": runtime = try value(arg)
            case "--runtime-root": runtimeRoot = try value(arg)
            case "--state-dir": stateDir = try value(arg)
            case "--log": logPath = try value(arg)
            case "--log-max-size":
                guard let n = ShimOptions.size(try value(arg)) else { throw ShimError("--log-max-size: not a size") }
                logMaxSize = n
            case "--log-max-files":
                guard let n = Int(try value(arg)), n >= 1 else { throw ShimError("--log-max-files: a count of at least 1") }
                logMaxFiles = n
            case "--terminal": terminal = true
            case "--stdin": stdin = true
            default: throw ShimError("unknown argument \(arg)")
            }
        }
        for (flag, v) in [("--id", id), ("--bundle", bundle), ("--state-dir", stateDir), ("--log", logPath)] where v.isEmpty {
            throw ShimError("\(flag) is required")
        }
        guard id.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }), !id.hasPrefix(".") else {
            throw ShimError("--id: letters, digits, '_', '-' and '.' only")
        }
        for (flag, v) in [("--bundle", bundle), ("--state-dir", stateDir), ("--log", logPath)] where !v.hasPrefix("/") {
            throw ShimError("\(flag) must be an absolute path")
        }
        if runtime.isEmpty { runtime = ShimOptions.defaultRuntime() }
    }

    /// srunc installed next to sshim, else whatever `srunc` PATH finds.
    static func defaultRuntime() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0 {
            let exe = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let slash = exe.lastIndex(of: "/") {
                let sibling = String(exe[..<slash]) + "/srunc"
                if access(sibling, X_OK) == 0 { return sibling }
            }
        }
        return "srunc"
    }

    /// "1048576", "512k", "10m", "1g".
    static func size(_ text: String) -> Int? {
        let units: [Character: Int] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30]
        if let last = text.last?.lowercased().first, let unit = units[last] {
            return Int(text.dropLast()).map { $0 * unit }
        }
        return Int(text).flatMap { $0 >= 0 ? $0 : nil }
    }
}

/// A failure with the message the starter or a client is shown.
public struct ShimError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// The failed call and errno's text.
    static func sys(_ what: String) -> ShimError { ShimError("\(what): \(String(cString: strerror(errno)))") }
}
