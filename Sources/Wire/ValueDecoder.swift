/// Decodes Codable API types from a parsed JSON value. Strict mode (the daemon reading
/// requests) refuses fields the type does not declare, duplicate fields, fractions or
/// out-of-range numbers for integers: Foundation's JSONDecoder ignores unknown fields and
/// reports type errors without the field, and an API that silently drops `"ports"` or reads
/// `1e300` as garbage is how the old daemon misled its clients. Lenient mode (clients reading
/// replies) ignores unknown fields, so a newer daemon can add them.
public struct ValueDecoder: Sendable {
    public var strict: Bool

    public init(strict: Bool) { self.strict = strict }

    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try T(from: TreeDecoder(value: value, codingPath: [], strict: strict))
    }

    /// "memory: expected a whole number, got 1e+300": the field path, then the reason.
    public static func describe(_ error: Error, root: String? = "params") -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        let (path, reason): ([CodingKey], String)
        switch error {
        case .typeMismatch(_, let c), .dataCorrupted(let c): (path, reason) = (c.codingPath, c.debugDescription)
        case .valueNotFound(_, let c): (path, reason) = (c.codingPath, "must not be null")
        case .keyNotFound(let key, let c): (path, reason) = (c.codingPath + [key], "is required")
        @unknown default: return "\(error)"
        }
        var text = root ?? ""
        for key in path {
            if let i = key.intValue { text += "[\(i)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
        }
        return text + ": " + reason
    }
}

/// A coding key made from any string or index: paths of unknown fields and array elements.
public struct AnyKey: CodingKey {
    public var stringValue: String
    public var intValue: Int?
    public init(stringValue: String) { self.stringValue = stringValue }
    public init(intValue: Int) { stringValue = String(intValue); self.intValue = intValue }
}

/// What a JSON value is, in words, for error messages.
func kind(_ value: JSONValue) -> String {
    switch value {
    case .null: return "null"
    case .bool: return "a boolean"
    case .number(let n): return "the number \(n.rounded() == n && abs(n) < 1e15 ? String(Int64(n)) : String(n))"
    case .string: return "a string"
    case .array: return "an array"
    case .object: return "an object"
    }
}

struct TreeDecoder: Decoder {
    let value: JSONValue
    let codingPath: [CodingKey]
    let strict: Bool
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func mismatch(_ expected: String) -> DecodingError {
        .typeMismatch(Any.self, .init(codingPath: codingPath, debugDescription: "expected \(expected), got \(kind(value))"))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else { throw mismatch("an object") }
        var byName: [String: JSONValue] = [:]
        for (name, member) in members {
            guard byName.updateValue(member, forKey: name) == nil || !strict else {
                throw DecodingError.dataCorrupted(.init(codingPath: codingPath + [AnyKey(stringValue: name)], debugDescription: "given twice"))
            }
            // A synthesized CodingKeys enum has no case for a name the type does not declare.
            if strict && Key(stringValue: name) == nil {
                throw DecodingError.dataCorrupted(.init(codingPath: codingPath + [AnyKey(stringValue: name)], debugDescription: "unknown field"))
            }
        }
        return KeyedDecodingContainer(Keyed<Key>(members: byName, codingPath: codingPath, strict: strict))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw mismatch("an array") }
        return Unkeyed(items: items, codingPath: codingPath, strict: strict)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { Single(decoder: self) }
}

struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [CodingKey]
    let strict: Bool
    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    func child(_ key: Key) throws -> TreeDecoder {
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "is required"))
        }
        return TreeDecoder(value: value, codingPath: codingPath + [key], strict: strict)
    }

    func decodeNil(forKey key: Key) throws -> Bool { members[key.stringValue].map { $0 == .null } ?? true }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try T(from: child(key)) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try Single(decoder: child(key)).decode(type) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try Single(decoder: child(key)).decode(type) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try Single(decoder: child(key)).decode(type) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try Single(decoder: child(key)).decode(type) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try Single(decoder: child(key)).decode(type) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try Single(decoder: child(key)).decode(type) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try Single(decoder: child(key)).decode(type) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try Single(decoder: child(key)).decode(type) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try Single(decoder: child(key)).decode(type) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try Single(decoder: child(key)).decode(type) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try Single(decoder: child(key)).decode(type) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try Single(decoder: child(key)).decode(type) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try Single(decoder: child(key)).decode(type) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try Single(decoder: child(key)).decode(type) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { try child(key).unkeyedContainer() }
    func superDecoder() throws -> Decoder { TreeDecoder(value: .object(members.map { ($0.key, $0.value) }), codingPath: codingPath, strict: strict) }
    func superDecoder(forKey key: Key) throws -> Decoder { try child(key) }
}

struct Unkeyed: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [CodingKey]
    let strict: Bool
    var currentIndex = 0
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    mutating func next() throws -> TreeDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "array too short"))
        }
        defer { currentIndex += 1 }
        return TreeDecoder(value: items[currentIndex], codingPath: codingPath + [AnyKey(intValue: currentIndex)], strict: strict)
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: next()) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> Decoder { try next() }
}

struct Single: SingleValueDecodingContainer {
    let decoder: TreeDecoder
    var codingPath: [CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool { decoder.value == .null }
    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let b) = decoder.value else { throw decoder.mismatch("true or false") }
        return b
    }
    func decode(_ type: String.Type) throws -> String {
        guard case .string(let s) = decoder.value else { throw decoder.mismatch("a string") }
        return s
    }
    func decode(_ type: Double.Type) throws -> Double {
        guard case .number(let n) = decoder.value, n.isFinite else { throw decoder.mismatch("a number") }
        return n
    }
    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }
    func decode(_ type: Int.Type) throws -> Int { try integer() }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer() }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer() }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer() }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer() }
    func decode(_ type: UInt.Type) throws -> UInt { try integer() }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer() }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer() }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer() }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer() }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: decoder) }

    /// A whole number that fits T exactly (JSON numbers are doubles: beyond 2^53 they are not exact).
    func integer<T: FixedWidthInteger>() throws -> T {
        guard case .number(let n) = decoder.value, n.rounded() == n, abs(n) <= 9_007_199_254_740_992,
              let v = T(exactly: n) else {
            throw decoder.mismatch(T.isSigned ? "a whole number" : "a whole number, not negative")
        }
        return v
    }
}
