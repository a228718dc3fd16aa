import Foundation
@testable import Shim
import Testing
import Wire

/// The shim's Foundation-free pieces: JSON values, base64, log records, its command line.
@Suite("wire and shim units") struct WireTests {
    @Test func parsesAndPrintsJSON() throws {
        let text = #"{"id":7,"method":"exec","params":{"process":{"args":["sh","-c","echo \"hi\"\n"],"env":[]},"tty":false,"x":null,"f":1.5}}"#
        let value = try JSONValue.parse(text)
        #expect(value["id"]?.int == 7)
        #expect(value["params"]?["process"]?["args"]?.array?.last?.string == "echo \"hi\"\n")
        #expect(value["params"]?["tty"]?.bool == false)
        #expect(value["params"]?["f"]?.number == 1.5)
        #expect(value.serialized == text)
        #expect(try JSONValue.parse(#""\u00e9\ud83d\ude00\t""#).string == "é😀\t")
        #expect(JSONValue.string("a\u{1}b").serialized == #""a\u0001b""#)
    }

    @Test func rejectsMalformedJSON() {
        for bad in ["{", "{\"a\":}", "[1,]", "{\"a\":1} x", "\"\u{1}\"", "tru", "-", String(repeating: "[", count: 100)] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONValue.parse(bad) }
        }
    }

    @Test func base64MatchesFoundation() {
        for n in 0..<10 {
            let bytes = (0..<n).map { UInt8(($0 * 97 + 13) & 0xff) }
            let encoded = Base64.encode(bytes)
            #expect(encoded == Data(bytes).base64EncodedString())
            #expect(Base64.decode(encoded) == bytes)
        }
        #expect(Base64.decode("abc") == nil)
        #expect(Base64.decode("a=bc") == nil)
    }

    @Test func logRecordsKeepEveryByte() throws {
        let text = OutputLog.record(time: "T", stream: "stdout", ArraySlice(Array("a\"b\n".utf8)), partial: false)
        #expect(String(decoding: text, as: UTF8.self) == #"{"time":"T","stream":"stdout","log":"a\"b\n"}"# + "\n")
        let binary = OutputLog.record(time: "T", stream: "stderr", [0xff, 0x00, 0x41], partial: true)
        #expect(String(decoding: binary, as: UTF8.self) == #"{"time":"T","stream":"stderr","b64":"/wBB","partial":true}"# + "\n")
    }

    @Test func shimCommandLine() throws {
        let o = try ShimOptions(arguments: ["--id", "c1", "--bundle", "/b", "--state-dir", "/s", "--log", "/l", "--terminal",
                                            "--log-max-size", "10m", "--log-max-files", "3", "--runtime", "/usr/sbin/runc"])
        #expect(o.terminal && !o.stdin && o.logMaxSize == 10 << 20 && o.logMaxFiles == 3 && o.runtime == "/usr/sbin/runc")
        for bad in [["--id", "c1"], ["--id", "../x", "--bundle", "/b", "--state-dir", "/s", "--log", "/l"],
                    ["--id", "c1", "--bundle", "b", "--state-dir", "/s", "--log", "/l"], ["--frob"]] {
            #expect(throws: ShimError.self, "\(bad)") { try ShimOptions(arguments: bad) }
        }
    }
}
