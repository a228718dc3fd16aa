import OCI

/// A signal by number, written as its name (`SIGTERM`); read from a name with or without
/// `SIG`, or a number from 1 to 64. Unknown names are invalid-params, not a runtime failure.
public struct Signal: Codable, Sendable, Equatable, CustomStringConvertible {
    public let number: Int

    static let names = ["HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM",
                        "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF",
                        "WINCH", "IO", "PWR", "SYS"]
    public static let kill = Signal(number: 9)
    public static let term = Signal(number: 15)

    public init(number: Int) { self.number = number }

    public init(parsing text: String) throws(APIError) {
        if let n = Int(text) {
            guard (1...64).contains(n) else { throw .params("signal: \(n) is not a signal number (1-64)") }
            number = n
            return
        }
        var name = text.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        let aliases = ["IOT": 6, "POLL": 29, "CLD": 17, "RTMIN": 34, "RTMAX": 64]
        if let i = Signal.names.firstIndex(of: name) { number = i + 1 } else if let n = aliases[name] { number = n } else {
            throw .params("signal: unknown signal \(ReferenceError.shown(text))")
        }
    }

    public var description: String { number <= Signal.names.count ? "SIG" + Signal.names[number - 1] : String(number) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int.self) { try self.init(parsing: String(n)) } else { try self.init(parsing: c.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
