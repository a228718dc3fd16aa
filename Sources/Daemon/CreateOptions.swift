import Foundation

/// What a client may ask of a new container (params of container.create/run), decoded
/// strictly: an unknown field's type mismatch is an invalid-params error naming it.
public struct CreateOptions: Codable, Sendable {
    public var image: String
    public var name: String?
    public var cmd: [String]?
    public var entrypoint: [String]?
    public var env: [String]?
    public var workdir: String?
    public var user: String?
    public var hostname: String?
    public var tty: Bool?
    public var stdin: Bool?
    public var readOnly: Bool?
    /// "SRC:DST[:ro]" where SRC is an absolute host path (bind) or a volume name.
    public var volumes: [String]?
    public var memory: Int64?
    /// CPUs as a fraction (1.5 = 150000us per 100000us period).
    public var cpus: Double?
    public var pidsLimit: Int64?
    public var capAdd: [String]?
    public var capDrop: [String]?
    /// "no", "on-failure[:N]", "always".
    public var restart: String?
    public var autoRemove: Bool?
    /// Parent cgroup for the container (tests use their own); default /scontainerd.
    public var cgroupParent: String?
}

/// A restart policy as the daemon applies it when a container exits on its own.
public struct RestartPolicy: Sendable, Equatable {
    /// The policy names as clients spell them.
    public enum Kind: String, Sendable { case no, onFailure = "on-failure", always }
    public var kind: Kind
    public var maxRetries: Int

    public init(_ text: String?) throws {
        guard let text, !text.isEmpty else { kind = .no; maxRetries = 0; return }
        let parts = text.split(separator: ":", maxSplits: 1)
        guard let k = Kind(rawValue: String(parts[0])) else { throw RPCError.params("restart: no, on-failure[:N] or always") }
        kind = k
        maxRetries = 0
        if parts.count == 2 {
            guard k == .onFailure, let n = Int(parts[1]), n >= 0 else { throw RPCError.params("restart: a retry count goes with on-failure only") }
            maxRetries = n
        }
    }

    /// Whether a container that exited with `code`, already restarted `count` times, goes again.
    public func restarts(exitCode code: Int, count: Int) -> Bool {
        switch kind {
        case .no: return false
        case .always: return true
        case .onFailure: return code != 0 && (maxRetries == 0 || count < maxRetries)
        }
    }
}

/// An RPC error with the protocol's code.
public struct RPCError: Error, CustomStringConvertible, Sendable {
    public let code: String
    public let description: String

    public init(_ code: String, _ message: String) { self.code = code; description = message }
    /// Constructors by code, so call sites read as the protocol does.
    public static func params(_ m: String) -> RPCError { RPCError("invalid-params", m) }
    public static func notFound(_ m: String) -> RPCError { RPCError("not-found", m) }
    public static func conflict(_ m: String) -> RPCError { RPCError("conflict", m) }
    public static func precondition(_ m: String) -> RPCError { RPCError("failed-precondition", m) }
    public static func `internal`(_ m: String) -> RPCError { RPCError("internal", m) }
}
