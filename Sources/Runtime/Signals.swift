@preconcurrency import Glibc

/// Signal names as `kill` accepts them: "KILL", "SIGKILL" or "9".
public enum Signals {
    static let names: [String: Int32] = [
        "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
        "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
        "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
        "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
        "POLL": 29, "PWR": 30, "SYS": 31,
    ]

    public static func parse(_ text: String) throws -> Int32 {
        if let n = Int32(text) {
            // 0 is valid: it checks that the process exists (runc accepts it).
            guard n >= 0 && n <= 64 else { throw RuntimeError("invalid signal: \(text)") }
            return n
        }
        var name = text.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        if let n = names[name] { return n }
        if name.hasPrefix("RTMIN"), let off = name == "RTMIN" ? 0 : Int32(name.dropFirst(6)), off >= 0, off <= 30 {
            return 34 + off
        }
        throw RuntimeError("unknown signal \"\(text)\"")
    }
}
