import API
import Foundation
import OCI
import Testing
import Wire

/// The API's types against docs/scontainerd-rpc.md, and the strict decoding the daemon uses.
@Suite("API contract")
struct APIContractTests {
    static let doc: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return (try? String(contentsOf: url.appendingPathComponent("docs/scontainerd-rpc.md"), encoding: .utf8)) ?? ""
    }()

    /// Table rows of the doc whose first cell is a backticked name: (name, second cell).
    static func rows(_ text: String) -> [(String, String)] {
        text.split(separator: "\n").compactMap { line in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 3, cells[1].hasPrefix("`"), cells[1].hasSuffix("`") else { return nil }
            return (String(cells[1].dropFirst().dropLast()), cells[2])
        }
    }

    /// The backticked identifiers of a cell, outside parentheses: the fields it names.
    static func fields(_ cell: String) -> Set<String> {
        var depth = 0, plain = ""
        for ch in cell {
            if ch == "(" { depth += 1 } else if ch == ")" { depth = max(0, depth - 1) } else if depth == 0 { plain.append(ch) }
        }
        return Set(plain.split(separator: "`", omittingEmptySubsequences: false).enumerated().compactMap { i, part in
            i % 2 == 1 && !part.isEmpty && part.allSatisfy({ $0.isLetter }) ? String(part) : nil
        })
    }

    @Test func everyMethodIsDocumentedAndEveryDocumentedMethodIsServed() {
        let documented = Set(Self.rows(Self.doc).map(\.0).filter { $0.contains(".") })
        let served = Set(Method.allCases.map(\.rawValue))
        #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served).sorted())")
        #expect(served.subtracting(documented).isEmpty, "served but not documented: \(served.subtracting(documented).sorted())")
    }

    @Test func documentedParamsAreTheTypesFields() throws {
        let createSection = Self.doc.components(separatedBy: "### Create options").dropFirst().first?.components(separatedBy: "Image `Volumes`").first ?? ""
        let createFields = Set(Self.rows(createSection).map(\.0))
        for (name, cell) in Self.rows(Self.doc) where name.contains(".") {
            guard let method = Method(rawValue: name) else { continue }
            let documented = cell == "create options" ? createFields : Self.fields(cell)
            let actual = try FieldProbe.fields(of: method.call)
            #expect(documented == actual, "\(name): the doc lists \(documented.sorted()), the type has \(actual.sorted())")
        }
    }

    @Test func strictDecodingNamesTheField() throws {
        func problem(_ json: String) -> String {
            let request = Request.parse(Array(("{\"id\":1,\"method\":\"container.create\",\"params\":" + json + "}").utf8))
            guard case .success(let r) = request else { return "request: \(request)" }
            do { _ = try r.decode(Calls.ContainerCreate.self); return "accepted" } catch { return error.message }
        }
        #expect(problem(#"{"image":"x","ports":["80:80"]}"#) == "params.ports: unknown field")
        #expect(problem(#"{"image":"x","bogus":1}"#) == "params.bogus: unknown field")
        #expect(problem(#"{"image":"x","memory":1e300}"#).hasPrefix("params.memory: expected a whole number"))
        #expect(problem(#"{"image":"x","memory":1.5}"#).hasPrefix("params.memory: expected a whole number"))
        #expect(problem(#"{"image":5}"#) == "params.image: expected a string, got the number 5")
        #expect(problem(#"{}"#) == "params.image: is required")
        #expect(problem(#"{"image":"x","env":["A=1",3]}"#) == "params.env[1]: expected a string, got the number 3")
        #expect(problem(#"{"image":"x","restart":{"name":"sometimes"}}"#).hasPrefix("params.restart.name:"))
        #expect(problem(#"{"image":"x","image":"y"}"#) == "params.image: given twice")
        #expect(problem(#"{"image":"x","tty":true}"#) == "accepted")
    }

    @Test func envelopeErrors() {
        func code(_ line: String) -> ErrorCode? {
            if case .failure(let e) = Request.parse(Array(line.utf8)) { return e.error.code }
            return nil
        }
        #expect(code("{oops") == .invalidJSON)
        #expect(code(#"{"id":1}"#) == .invalidRequest)
        #expect(code(#"{"id":1,"method":"x.y"}"#) == .unknownMethod)
        #expect(code(#"{"id":1,"method":"system.version","extra":1}"#) == .invalidRequest)
        #expect(code(#"{"id":1,"method":"system.version","namespace":"../x"}"#) == .invalidParams)
        #expect(code(#"{"id":1,"method":"system.version","params":[]}"#) == .invalidRequest)
        #expect(code(#"{"id":1,"method":"system.version","namespace":"k8s.io"}"#) == nil)
    }

    @Test func createOptionsRules() {
        func check(_ edit: (inout CreateOptions) -> Void) -> String? {
            var o = CreateOptions(image: "busybox")
            edit(&o)
            do { try o.validate(); return nil } catch { return error.message }
        }
        #expect(check { $0.capAdd = ["BOGUS"] } == "capAdd[0]: unknown capability \"BOGUS\"")
        #expect(check { $0.capAdd = ["ALL", "net_admin", "CAP_SYS_TIME"] } == nil)
        #expect(check { $0.name = "Bad Name" }?.hasPrefix("name:") == true)
        #expect(check { $0.memory = 1 }?.hasPrefix("memory: at least 4 MiB") == true)
        #expect(check { $0.volumes = ["rel:dst"] }?.hasPrefix("volumes[0]") == true)
        #expect(check { $0.cgroupParent = "/a/../b" }?.hasPrefix("cgroupParent") == true)
        #expect(check { $0.env = ["=x"] }?.hasPrefix("env[0]") == true)
    }

    @Test func imageReferences() throws {
        #expect(try ImageReference.normalize("busybox") == "docker.io/library/busybox:latest")
        #expect(try ImageReference.normalize("me/app:1") == "docker.io/me/app:1")
        #expect(try ImageReference.normalize("localhost:5000/a/b") == "localhost:5000/a/b:latest")
        #expect(try ImageReference.normalize("registry.example/x@sha256:" + String(repeating: "a", count: 64)).hasSuffix("@sha256:" + String(repeating: "a", count: 64)))
        for bad in ["Bad Name", "../../../etc/x:1", "a\nb", String(repeating: "a", count: 5000), "UPPER", "a:", "a//b", "-a", "a@sha256:xyz", ""] {
            #expect(throws: ReferenceError.self, "\(bad.prefix(20))") { try ImageReference.normalize(bad) }
        }
    }

    @Test func signalsAndTimes() throws {
        #expect(try Signal(parsing: "TERM").number == 15)
        #expect(try Signal(parsing: "sigkill").number == 9)
        #expect(try Signal(parsing: "10").description == "SIGUSR1")
        #expect(throws: APIError.self) { try Signal(parsing: "BOGUS") }
        #expect(throws: APIError.self) { try Signal(parsing: "0") }
        #expect(Timestamp.parse("1970-01-01T00:00:01.5Z") == 1_500_000_000)
        #expect(Timestamp.parse("2026-12-01T12:00:00+01:00") == Timestamp.parse("2026-12-01T11:00:00Z"))
        let now = Timestamp.now()
        #expect(Timestamp.parse(now).map { Timestamp.format(seconds: $0 / 1_000_000_000, nanoseconds: $0 % 1_000_000_000) } == now)
        #expect(Timestamp.parse("yesterday") == nil)
    }
}

/// The top-level fields a Decodable type asks for: decoding it from a decoder that records
/// every key requested and answers "absent" (or a neutral value for required ones).
enum FieldProbe {
    static func fields(of call: any Call.Type) throws -> Set<String> { try fields(call) }

    private static func fields<C: Call>(_ call: C.Type) throws -> Set<String> {
        let recorder = Recorder()
        _ = try C.Params(from: ProbeDecoder(recorder: recorder, depth: 0))
        return recorder.keys
    }

    final class Recorder { var keys = Set<String>() }

    struct ProbeDecoder: Decoder {
        let recorder: Recorder
        let depth: Int
        var codingPath: [CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            KeyedDecodingContainer(Keyed<Key>(recorder: recorder, depth: depth))
        }
        func unkeyedContainer() throws -> UnkeyedDecodingContainer { Unkeyed() }
        func singleValueContainer() throws -> SingleValueDecodingContainer { Single() }
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let recorder: Recorder
        let depth: Int
        var codingPath: [CodingKey] { [] }
        var allKeys: [Key] { [] }
        func record(_ key: Key) { if depth == 0 { recorder.keys.insert(key.stringValue) } }
        func contains(_ key: Key) -> Bool { record(key); return false }
        func decodeNil(forKey key: Key) throws -> Bool { record(key); return true }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            record(key)
            return try T(from: ProbeDecoder(recorder: recorder, depth: depth + 1))
        }
        func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> {
            record(key)
            return KeyedDecodingContainer(Keyed<N>(recorder: recorder, depth: depth + 1))
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { record(key); return Unkeyed() }
        func superDecoder() throws -> Decoder { ProbeDecoder(recorder: recorder, depth: depth + 1) }
        func superDecoder(forKey key: Key) throws -> Decoder { record(key); return ProbeDecoder(recorder: recorder, depth: depth + 1) }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        var codingPath: [CodingKey] { [] }
        var count: Int? { 0 }
        var isAtEnd: Bool { true }
        var currentIndex: Int { 0 }
        mutating func decodeNil() throws -> Bool { true }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { throw DecodingError.valueNotFound(T.self, .init(codingPath: [], debugDescription: "empty")) }
        mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> { throw DecodingError.valueNotFound(N.self, .init(codingPath: [], debugDescription: "empty")) }
        mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer { self }
        mutating func superDecoder() throws -> Decoder { throw DecodingError.valueNotFound(Any.self, .init(codingPath: [], debugDescription: "empty")) }
    }

    /// Neutral values: "", 0, false.
    struct Single: SingleValueDecodingContainer {
        var codingPath: [CodingKey] { [] }
        func decodeNil() -> Bool { false }
        func decode(_ type: Bool.Type) throws -> Bool { false }
        func decode(_ type: String.Type) throws -> String { "" }
        func decode(_ type: Double.Type) throws -> Double { 0 }
        func decode(_ type: Float.Type) throws -> Float { 0 }
        func decode(_ type: Int.Type) throws -> Int { 0 }
        func decode(_ type: Int8.Type) throws -> Int8 { 0 }
        func decode(_ type: Int16.Type) throws -> Int16 { 0 }
        func decode(_ type: Int32.Type) throws -> Int32 { 0 }
        func decode(_ type: Int64.Type) throws -> Int64 { 0 }
        func decode(_ type: UInt.Type) throws -> UInt { 0 }
        func decode(_ type: UInt8.Type) throws -> UInt8 { 0 }
        func decode(_ type: UInt16.Type) throws -> UInt16 { 0 }
        func decode(_ type: UInt32.Type) throws -> UInt32 { 0 }
        func decode(_ type: UInt64.Type) throws -> UInt64 { 0 }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { throw DecodingError.valueNotFound(T.self, .init(codingPath: [], debugDescription: "probe")) }
    }
}
