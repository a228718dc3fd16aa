import FoundationEssentials
import Wire

/// JSON coding through FoundationEssentials (no ICU, no threads), with decode errors that name
/// the offending field the way a user reads config.json ("process.args[2]").
public enum JSON {
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let error as DecodingError {
            // FoundationEssentials reports a number out of range (uid -1, 1e300) with no field:
            // only then, decode again with a decoder that names it.
            if case .dataCorrupted(let ctx) = error, ctx.codingPath.isEmpty, let value = try? JSONValue.parse(bytes) {
                do { _ = try ValueDecoder(strict: false).decode(type, from: value) } catch {
                    throw RuntimeError("\(what): field \(ValueDecoder.describe(error, root: nil))")
                }
            }
            throw RuntimeError("\(what): \(describe(error))")
        }
    }

    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.withoutEscapingSlashes]
        return Array(try enc.encode(value))
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            var s = ""
            for k in keys {
                if let i = k.intValue { s += "[\(i)]" } else { s += s.isEmpty ? k.stringValue : "." + k.stringValue }
            }
            return s.isEmpty ? "(top level)" : s
        }
        switch error {
        case .keyNotFound(let key, let ctx):
            let parent = path(ctx.codingPath)
            return "missing field \(parent == "(top level)" ? key.stringValue : parent + "." + key.stringValue)"
        case .typeMismatch(let type, let ctx):
            return "field \(path(ctx.codingPath)): expected \(typeName(type))"
        case .valueNotFound(let type, let ctx):
            return "field \(path(ctx.codingPath)): expected \(typeName(type)), found null"
        case .dataCorrupted(let ctx):
            if ctx.codingPath.isEmpty { return "invalid JSON" }
            return "field \(path(ctx.codingPath)): invalid value"
        @unknown default:
            return "invalid JSON"
        }
    }

    private static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt32.Type, is UInt64.Type, is UInt16.Type: return "a number"
        default:
            let n = String(describing: t)
            if n.hasPrefix("Array") { return "an array" }
            if n.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }
}
