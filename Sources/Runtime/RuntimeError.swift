@preconcurrency import Glibc

/// Every failure the runtime reports: one human sentence, printed as runc prints its errors.
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// The errno of a failed syscall (`sys`), for callers that treat some as expected.
    public var errno: Int32? = nil
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// An errno as Go words it (strerror's text, lower case first), which runc's clients match.
    public static func goText(_ err: Int32) -> String {
        let text = String(cString: strerror(err))
        return text.prefix(1).lowercased() + text.dropFirst()
    }

    /// A failed syscall, "what: errno text", in Go's words as runc prints it.
    public static func sys(_ what: String, _ err: Int32 = Glibc.errno) -> RuntimeError {
        var e = RuntimeError("\(what): \(goText(err))")
        e.errno = err
        return e
    }
}

/// Runs a syscall-returning closure, retrying EINTR, throwing `RuntimeError.sys` on -1.
@discardableResult
func check(_ what: @autoclosure () -> String, _ body: () -> Int32) throws -> Int32 {
    while true {
        let r = body()
        if r >= 0 { return r }
        if errno == EINTR { continue }
        throw RuntimeError.sys(what())
    }
}
