import Foundation
import API
import OCI
import Wire
@testable import Runtime
@testable import SruncCLI
import Testing

/// Pure parts: spec decoding and its error messages, option and signal tables, flag parsing.
@Suite("units") struct UnitTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func fixtureConfigDecodes() throws {
        let bytes = try [UInt8](Data(contentsOf: Self.root.appendingPathComponent("spec-fixtures/minimal.json")))
        let spec = try JSON.decode(Spec.self, from: bytes, what: "config.json")
        #expect(spec.process?.args?.first == "sh")
        #expect(spec.linux?.namespaces?.count == 5)
        try Bundle.validate(spec)
    }

    @Test func defaultSpecDecodesAndValidates() throws {
        let spec = try JSON.decode(Spec.self, from: Array(DefaultSpec.json.utf8), what: "spec")
        try Bundle.validate(spec)
        #expect(spec.process?.terminal == true)
        #expect(spec.root == Root(path: "rootfs", readonly: true))
    }

    @Test(arguments: [
        (#"{"ociVersion":"1.2.0","process":{"user":{"uid":0,"gid":0},"args":"sh","cwd":"/"}}"#, "field process.args: expected an array"),
        (#"{"ociVersion":"1.2.0","process":{"user":{"uid":0},"args":["sh"],"cwd":"/"}}"#, "missing field process.user.gid"),
        (#"{"ociVersion":"1.2.0","mounts":[{"destination":"/x","options":[1]}]}"#, "field mounts[0].options[0]: expected a string"),
        (#"{"ociVersion":"#, "invalid JSON"),
    ])
    func decodeErrorsNameTheField(_ json: String, _ message: String) {
        #expect(throws: RuntimeError.self) { try JSON.decode(Spec.self, from: Array(json.utf8), what: "config.json") }
        do { _ = try JSON.decode(Spec.self, from: Array(json.utf8), what: "config.json") } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }

    @Test func validationRejectsWithFieldNames() throws {
        var spec = try JSON.decode(Spec.self, from: Array(DefaultSpec.json.utf8), what: "spec")
        spec.linux?.namespaces?.append(Namespace(type: "bogus"))
        #expect(throws: RuntimeError.self) { try Bundle.validate(spec) }
        spec.linux?.namespaces?.removeLast()
        spec.process?.cwd = "relative"
        do { try Bundle.validate(spec); Issue.record("accepted relative cwd") } catch {
            #expect("\(error)".contains("process.cwd"))
        }
    }

    @Test func signals() throws {
        #expect(try Signals.parse("KILL") == 9)
        #expect(try Signals.parse("SIGTERM") == 15)
        #expect(try Signals.parse("sigusr1") == 10)
        #expect(try Signals.parse("9") == 9)
        #expect(try Signals.parse("RTMIN+2") == 36)
        #expect(throws: RuntimeError.self) { try Signals.parse("SIGFOO") }
        #expect(try Signals.parse("0") == 0, "signal 0 only checks the process exists, as in runc")
        #expect(throws: RuntimeError.self) { try Signals.parse("65") }
    }

    @Test func mountOptions() {
        let o = MountOptions(["rbind", "ro", "nosuid", "rprivate", "mode=755", "rw", "tmpcopyup"])
        #expect(o.isBind)
        #expect(o.flags & UInt(MS_RDONLY) == 0)
        #expect(o.flags & UInt(MS_NOSUID) != 0)
        #expect(o.flags & UInt(MS_REC) != 0)
        #expect(o.propagation == [UInt(MS_PRIVATE | MS_REC)])
        #expect(o.data == ["mode=755"])
    }

    @Test func flagParsing() throws {
        let flags: [FlagSpec] = [.value("bundle", "b"), .bool("detach", "d"), .value("pid-file")]
        let a = try ParsedArguments(["-b", "/x", "id1", "--detach", "--pid-file=/p"][...], flags: flags)
        #expect(a.value("bundle") == "/x")
        #expect(a.flag("detach"))
        #expect(a.value("pid-file") == "/p")
        #expect(a.positionals == ["id1"])
        let g = try ParsedArguments(["--root", "/r", "-log-format=json", "kill", "--all", "x"][...],
                                    flags: [.value("root"), .value("log-format"), .bool("all")], stopAtPositional: true)
        #expect(g.value("root") == "/r" && g.value("log-format") == "json")
        #expect(g.positionals == ["kill", "--all", "x"])
        #expect(throws: UsageError.self) { try ParsedArguments(["--nope"][...], flags: flags) }
        #expect(try !ParsedArguments(["--detach=false"][...], flags: flags).flag("detach"))
    }

    @Test func stateJSONShape() throws {
        let s = ContainerState(ociVersion: "1.2.0", id: "a", pid: 7, status: "running", bundle: "/b", rootfs: "/b/r",
                               created: "t", annotations: ["k": "v\"q"], owner: "root")
        let text = Output.stateJSON(s)
        let obj = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        #expect(obj?["pid"] as? Int == 7)
        #expect((obj?["annotations"] as? [String: String])?["k"] == "v\"q")
        #expect(text.hasPrefix("{\n  \"ociVersion\": \"1.2.0\",\n  \"id\": \"a\","))
    }

    @Test func tableLayout() {
        let t = Output.table([["ID", "PID"], ["averyveryverylongid", "1"]])
        // Column width = widest cell (19) + padding 3.
        #expect(t == "ID" + String(repeating: " ", count: 20) + "PID\naveryveryverylongid   1\n")
    }

    @Test func timestamps() {
        #expect(Timestamp.format(seconds: 0, nanoseconds: 0) == "1970-01-01T00:00:00Z")
        #expect(Timestamp.format(seconds: 951_782_400, nanoseconds: 500_000_000) == "2000-02-29T00:00:00.5Z")
        #expect(Timestamp.format(seconds: 1_795_377_461, nanoseconds: 123_456_789) == "2026-11-22T19:57:41.123456789Z")
    }

    @Test func idValidation() {
        #expect(throws: RuntimeError.self) { try StateStore.validate(id: "../x") }
        #expect(throws: RuntimeError.self) { try StateStore.validate(id: "") }
        #expect(throws: RuntimeError.self) { try StateStore.validate(id: "a/b") }
        #expect(throws: Never.self) { try StateStore.validate(id: "ok_id-1.2+3") }
    }
}

/// docker's `-p` grammar and the address arithmetic networks use.
@Suite("network values")
struct NetworkValueTests {
    @Test func publishGrammar() throws {
        #expect(try PortBinding.parse("80") == [PortBinding(hostPort: 0, containerPort: 80)])
        #expect(try PortBinding.parse("8080:80/udp") == [PortBinding(hostPort: 8080, containerPort: 80, proto: .udp)])
        #expect(try PortBinding.parse("127.0.0.1::53") == [PortBinding(hostIP: "127.0.0.1", hostPort: 0, containerPort: 53)])
        #expect(try PortBinding.parse("9000-9002:7000-7002").map(\.text) == ["0.0.0.0:9000->7000/tcp", "0.0.0.0:9001->7001/tcp", "0.0.0.0:9002->7002/tcp"])
        for bad in ["", "x", "80:x", "0", "1-3:5-6", "80/sctp", "300.1.1.1:80:80", "1:2:3:4", "70000"] {
            #expect(throws: APIError.self, "\(bad)") { try PortBinding.parse(bad) }
        }
    }

    @Test func subnets() throws {
        let a = try #require(IPv4Network(cidr: "172.17.0.0/16")), b = try #require(IPv4Network(cidr: "172.17.5.0/24"))
        let c = try #require(IPv4Network(cidr: "172.18.0.0/16"))
        #expect(a.overlaps(b) && b.overlaps(a) && !a.overlaps(c))
        #expect(IPv4Network(cidr: "172.17.0.1/16") == nil, "host bits set")
        let inside = try #require(IPv4Address("172.17.255.254")), broadcast = try #require(IPv4Address("172.17.255.255"))
        #expect(a.containsHost(inside) && !a.containsHost(broadcast))
        #expect(IPv4Address("1.2.3") == nil && IPv4Address("01.2.3.4") == nil && IPv4Address("1.2.3.4")?.description == "1.2.3.4")
        var p = NetworkCreateParams(name: "n")
        p.gateway = "10.0.0.1"
        #expect(throws: APIError.self) { try p.validate() }
        p.subnet = "10.0.0.0/24"
        #expect(throws: Never.self) { try p.validate() }
        p.gateway = "10.0.1.1"
        #expect(throws: APIError.self) { try p.validate() }
    }
}
