import Foundation
import OCI
import Wire

/// One request line: `{"id":ANY,"method":"noun.verb","namespace":"default","params":{...}}`.
/// `id` is echoed on every line that answers it; `namespace` defaults to `default`.
public struct Request: Sendable {
    public var id: JSONValue
    public var method: Method
    public var namespace: String
    public var params: JSONValue

    public static let defaultNamespace = "default"
    /// The longest request line the daemon reads; a longer one ends the connection.
    public static let maxLineLength = 4 << 20

    /// Parses a line; an error comes with whatever id could be read, for the error reply.
    public static func parse(_ line: [UInt8]) -> Result<Request, RequestError> {
        guard let value = try? JSONValue.parse(line) else { return .failure(RequestError(id: .null, APIError(.invalidJSON, "the line is not JSON"))) }
        guard case .object(let members) = value else {
            return .failure(RequestError(id: .null, APIError(.invalidRequest, "a request is a JSON object")))
        }
        let id = value["id"] ?? .null
        func fail(_ message: String) -> Result<Request, RequestError> { .failure(RequestError(id: id, APIError(.invalidRequest, message))) }
        for (key, _) in members where !["id", "method", "namespace", "params"].contains(key) {
            return fail("unknown request field \"\(key)\" (id, method, namespace, params)")
        }
        guard let name = value["method"]?.string else { return fail("a request is an object with a string \"method\"") }
        guard let method = Method(rawValue: name) else {
            return .failure(RequestError(id: id, APIError(.unknownMethod, "unknown method \(ReferenceError.shown(name))")))
        }
        var namespace = defaultNamespace
        if let ns = value["namespace"], ns != .null {
            guard let text = ns.string else { return fail("namespace: expected a string") }
            do { try Validate.namespace(text) } catch { return .failure(RequestError(id: id, error)) }
            namespace = text
        }
        let params = value["params"] ?? .object([])
        guard params == .null || params.isObject else { return fail("params: expected an object") }
        return .success(Request(id: id, method: method, namespace: namespace, params: params == .null ? .object([]) : params))
    }

    /// The params as the method's type, strictly: unknown or ill-typed fields are invalid-params.
    public func decode<C: Call>(_ call: C.Type) throws(APIError) -> C.Params {
        do { return try ValueDecoder(strict: true).decode(C.Params.self, from: params) } catch {
            throw APIError.params(ValueDecoder.describe(error))
        }
    }
}

/// A request that could not be read, with the id to answer.
public struct RequestError: Error, Sendable {
    public let id: JSONValue
    public let error: APIError
    public init(id: JSONValue, _ error: APIError) { self.id = id; self.error = error }
}

extension JSONValue {
    var isObject: Bool { if case .object = self { return true } else { return false } }
}

/// What the daemon sends on a connection, one line each. Every line carries the id of the
/// request it belongs to: its final `result` or `error`, or, before or after that as the
/// method's reference says, its notices (`progress`, `log`, `output`, `exit`, `event`).
public enum Line {
    public static func result<R: Encodable>(_ id: JSONValue, _ result: R) -> [UInt8] { encode(Body(id: id, key: "result", body: result)) }
    public static func error(_ id: JSONValue, _ error: APIError) -> [UInt8] { encode(Body(id: id, key: "error", body: error)) }
    public static func notice<N: Notice>(_ id: JSONValue, _ notice: N) -> [UInt8] { encode(Body(id: id, key: N.key.rawValue, body: notice)) }

    /// A request line, as clients send it.
    public static func request<P: Encodable>(id: JSONValue, method: Method, namespace: String?, params: P) -> [UInt8] {
        encode(RequestBody(id: id, method: method.rawValue, namespace: namespace, params: params))
    }

    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding our own value types cannot fail (no non-finite doubles reach here).
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8))
    }

    struct Body<B: Encodable>: Encodable {
        let id: JSONValue
        let key: String
        let body: B
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: AnyKey.self)
            try c.encode(id, forKey: AnyKey(stringValue: "id"))
            try c.encode(body, forKey: AnyKey(stringValue: key))
        }
    }

    struct RequestBody<P: Encodable>: Encodable {
        let id: JSONValue
        let method: String
        let namespace: String?
        let params: P
    }
}

/// The kinds of line that are not a request's final answer.
public enum NoticeKey: String, Sendable, CaseIterable {
    case progress, log, output, exit, event
}

/// A notice body: its key names it on the line.
public protocol Notice: Codable, Sendable {
    static var key: NoticeKey { get }
}

/// A line from the daemon as a client reads it.
public struct ServerLine: Sendable {
    public let id: JSONValue
    public let value: JSONValue

    public init?(_ line: [UInt8]) {
        guard let v = try? JSONValue.parse(line), v.isObject else { return nil }
        value = v
        id = v["id"] ?? .null
    }

    public var isFinal: Bool { value["result"] != nil || value["error"] != nil }

    /// The error reply, if this is one.
    public var error: APIError? {
        guard let e = value["error"] else { return nil }
        return (try? ValueDecoder(strict: false).decode(APIError.self, from: e)) ?? APIError(.internal, "an unreadable error reply")
    }

    /// The result as the method's type (unknown fields ignored: a newer daemon may add some).
    public func result<C: Call>(_ call: C.Type) throws -> C.Result {
        if let error { throw error }
        return try ValueDecoder(strict: false).decode(C.Result.self, from: value["result"] ?? .object([]))
    }

    public func notice<N: Notice>(_ type: N.Type) -> N? {
        value[N.key.rawValue].flatMap { try? ValueDecoder(strict: false).decode(N.self, from: $0) }
    }
}
