/// The protocol's error codes: what a client may branch on. The message is for people.
public enum ErrorCode: String, Codable, Sendable, CaseIterable {
    /// The line is not JSON.
    case invalidJSON = "invalid-json"
    /// Not an object with a string `method`, or an unknown envelope field.
    case invalidRequest = "invalid-request"
    case unknownMethod = "unknown-method"
    /// A param is missing, unknown, of the wrong type or out of range: the message names it.
    case invalidParams = "invalid-params"
    case notFound = "not-found"
    /// A name is taken, an object is in use, a container runs.
    case conflict
    /// The object is in the wrong state for this method.
    case failedPrecondition = "failed-precondition"
    /// A corrupt archive, a digest or size mismatch, a wrong platform, a hostile entry.
    case invalidImage = "invalid-image"
    /// The container's command does not exist (docker's exit 127).
    case commandNotFound = "command-not-found"
    /// The container's command exists but cannot be run (docker's exit 126).
    case commandNotExecutable = "command-not-executable"
    /// The shim or the OCI runtime failed; the message is theirs.
    case runtimeError = "runtime-error"
    /// A shim could not be reached.
    case unavailable
    case `internal`
}

/// An error reply's body.
public struct APIError: Error, Codable, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var description: String { message }

    public init(_ code: ErrorCode, _ message: String) { self.code = code; self.message = message }

    public static func params(_ m: String) -> APIError { APIError(.invalidParams, m) }
    public static func notFound(_ m: String) -> APIError { APIError(.notFound, m) }
    public static func conflict(_ m: String) -> APIError { APIError(.conflict, m) }
    public static func precondition(_ m: String) -> APIError { APIError(.failedPrecondition, m) }
    public static func `internal`(_ m: String) -> APIError { APIError(.internal, m) }
}
