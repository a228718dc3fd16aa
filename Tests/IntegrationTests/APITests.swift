import API
import CLinux
import Foundation
import Testing
import Wire

/// The typed API as clients meet it: sctr's docker grammar and exit codes, strict params
/// over raw RPC lines, namespaces, resumable events and logs, one daemon per root.
@Suite("scontainerd API")
struct APITests {
    static let image = "test/layered:oci"

    @Test func sctrParsesDockersGrammarBeforeSendingAnything() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        // Bad values are errors (125), not zero or a default; nothing is created.
        let pids = try d.run(["--pids-limit", "abc"], Self.image, ["true"])
        #expect(pids.code == 125 && pids.stderr.contains("--pids-limit"), "\(pids)")
        let time = try d.sctr(["stop", "-t", "x", "any"])
        #expect(time.code == 125 && time.stderr.contains("'x'"), "\(time)")
        let memory = try d.run(["-m", "lots"], Self.image, ["true"])
        #expect(memory.code == 125, "\(memory)")
        let unknown = try d.sctr(["logs", "--bogus", "x"])
        #expect(unknown.code == 125 && unknown.stderr.contains("--bogus"), "\(unknown)")
        let unknownRun = try d.run(["--bogus"], Self.image, ["true"])
        #expect(unknownRun.code == 125 && unknownRun.stderr.contains("unknown flag: --bogus"), "\(unknownRun)")
        #expect(try d.containers().isEmpty)
        // --flag=value, combined short flags, repeated flags, --.
        #expect(try d.run(["-d", "--name=web", "-l", "tier=web", "--label=team=a"], Self.image, ["sleep", "1000"]).code == 0)
        #expect(try d.run(["-dit", "--name", "shell"], Self.image, ["sh"]).code == 0)
        #expect(try d.inspect("shell")["status"] as? String == "running")
        let args = try d.run(["--rm", "--"], Self.image, ["sh", "-c", "echo $0 $1", "-x", "--y"])
        #expect(args.stdout == "-x --y\n", "\(args)")
        // ps: -q is ids only (no header), --filter, templates, json lines.
        let quiet = try d.sctr(["ps", "-q"]).stdout.split(separator: "\n")
        #expect(quiet.count == 2 && quiet.allSatisfy { $0.count == 12 && $0.allSatisfy(\.isHexDigit) }, "\(quiet)")
        #expect(try d.sctr(["ps", "--filter", "label=tier=web", "--format", "{{.Names}}"]).stdout == "web\n")
        #expect(try d.sctr(["ps", "--filter=name=she", "--format", "{{.Names}} {{.State}}"]).stdout == "shell running\n")
        #expect(try d.sctr(["ps", "-a", "--filter", "status=exited", "-q"]).stdout == "")
        let json = try d.containers(["--filter", "label=team=a"])
        #expect(json.count == 1 && json.first?["name"] as? String == "web" && (json.first?["labels"] as? [String: String])?["tier"] == "web")
        let badFilter = try d.sctr(["ps", "--filter", "bogus=1"])
        #expect(badFilter.code == 1 && badFilter.stderr.contains("filters.bogus"), "\(badFilter)")
        let badTemplate = try d.sctr(["ps", "--format", "{{.Nope}}"])
        #expect(badTemplate.code == 125 && badTemplate.stderr.contains("Nope"), "\(badTemplate)")
        // stop --time=N, rm -fv, and several ids with docker's partial failure.
        #expect(try d.sctr(["stop", "--time=1", "shell"]).code == 0)
        #expect(try d.run(["-d", "--name", "other"], Self.image, ["sleep", "1000"]).code == 0)
        let rm = try d.sctr(["rm", "-fv", "web", "nosuch", "other"])
        #expect(rm.code == 1 && rm.stdout == "web\nother\n" && rm.stderr.contains("nosuch"), "\(rm)")
        #expect(try d.sctr(["rm", "shell"]).code == 0)
        #expect(try d.containers().isEmpty)
        // Help and versions answer and exit 0.
        for args in [["help"], ["-h"], ["--help"], ["run", "--help"], ["help", "logs"]] {
            let r = try d.sctr(args)
            #expect(r.code == 0 && r.stdout.contains("USAGE"), "\(args): \(r)")
        }
        #expect(try d.sctr(["run", "--help"]).stdout.contains("--pids-limit"))
        #expect(try d.sctr(["--version"]).stdout.hasPrefix("sctr "))
        let daemonHelp = try execute(DaemonInstance.binDir + "/scontainerd", ["--help"])
        #expect(daemonHelp.code == 0 && daemonHelp.stdout.contains("--root"), "\(daemonHelp)")
    }

    @Test func sctrEnvironmentEntrypointAndExitCodes() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        // -e VAR takes the host's value (dropped if the host has none); --env-file.
        let envFile = d.dir + "/env"
        try "# a comment\nA=1\n\nB=two words\n".write(toFile: envFile, atomically: true, encoding: .utf8)
        let env = try d.sctr(["run", "--rm", "--cgroup-parent", "/" + d.name, "-e", "FROM_HOST", "-e", "NOT_ON_HOST_X", "--env-file", envFile,
                              Self.image, "sh", "-c", "echo $FROM_HOST; echo ${NOT_ON_HOST_X-unset}; echo $A $B"], env: ["FROM_HOST": "host value"])
        #expect(env.stdout == "host value\nunset\n1 two words\n", "\(env)")
        // --entrypoint= and --entrypoint '' clear the entrypoint.
        #expect(try d.run(["--rm", "--entrypoint="], Self.image, ["echo", "x", "y"]).stdout == "x y\n")
        let noCommand = try d.run(["--rm", "--entrypoint", ""], Self.image)
        #expect(noCommand.code == 125 && noCommand.stderr.contains("no command"), "\(noCommand)")
        // docker's exit codes: 127 not found, 126 not executable, 125 engine errors, else the container's.
        #expect(try d.run(["--rm"], Self.image, ["/no/such/program"]).code == 127)
        #expect(try d.run(["--rm"], Self.image, ["/etc/passwd"]).code == 126)
        #expect(try d.run(["--rm"], "no/such-image:1", ["true"]).code == 125)
        #expect(try d.run(["--rm"], Self.image, ["sh", "-c", "exit 7"]).code == 7)
        #expect(try d.run(["-d", "--name", "box"], Self.image, ["sleep", "1000"]).code == 0)
        #expect(try d.sctr(["exec", "box", "/no/such/program"]).code == 127)
        #expect(try d.sctr(["exec", "box", "sh", "-c", "exit 3"]).code == 3)
        // logs: timestamps, since/until by a record's time, tail, json records with cursors.
        #expect(try d.run(["-d", "--name", "talker"], Self.image, ["sh", "-c", "echo one; sleep 0.2; echo two; sleep 0.2; echo three"]).code == 0)
        #expect(try d.sctr(["wait", "talker"]).stdout == "0\n")
        let records = try d.sctr(["logs", "--format", "json", "talker"]).stdout.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        #expect(records.map { $0["log"] as? String } == ["one\n", "two\n", "three\n"])
        let second = records[1]["time"] as! String
        #expect(try d.sctr(["logs", "--since", second, "talker"]).stdout == "two\nthree\n")
        #expect(try d.sctr(["logs", "--until", second, "talker"]).stdout == "one\n")
        #expect(try d.sctr(["logs", "--tail", "1", "talker"]).stdout == "three\n")
        #expect(try d.sctr(["logs", "--cursor", records[0]["cursor"] as! String, "talker"]).stdout == "two\nthree\n")
        let stamped = try d.sctr(["logs", "-t", "talker"]).stdout.split(separator: "\n")
        #expect(stamped.count == 3 && stamped.allSatisfy { Timestamp.parse(String($0.split(separator: " ")[0])) != nil }, "\(stamped)")
        #expect(try d.sctr(["logs", "--since", "1h", "talker"]).stdout == "one\ntwo\nthree\n")
    }

    @Test func rawRequestsAreRefusedByName() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let c = try RPCClient(path: d.socketPath)
        func create(_ json: String) throws -> APIError? {
            try c.errorOf(line: #"{"id":1,"method":"container.create","params":"# + json + "}")
        }
        let base = #""image":"test/layered:oci","cmd":["true"],"cgroupParent":"/\#(d.name)""#
        #expect(try create("{" + base + #","ports":["80:80"]}"#)?.message == "params.ports: unknown field")
        #expect(try create("{" + base + #","bogus":1}"#)?.message == "params.bogus: unknown field")
        let huge = try create("{" + base + #","memory":1e300}"#)
        #expect(huge?.code == .invalidParams && huge?.message.hasPrefix("params.memory:") == true, "\(String(describing: huge))")
        #expect(try create("{" + base + #","capAdd":["BOGUS"]}"#)?.code == .invalidParams)
        #expect(try create("{" + base + #","restart":{"name":"often"}}"#)?.code == .invalidParams)
        #expect(try create("{" + base + #","name":"bad name"}"#)?.code == .invalidParams)
        #expect(try c.errorOf(line: #"{"id":2,"method":"container.list","params":{"filters":{"color":["red"]}}}"#)?.message.contains("filters.color") == true)
        #expect(try c.errorOf(line: #"{"id":3,"method":"system.version","params":{"x":1}}"#)?.message == "params.x: unknown field")
        #expect(try c.errorOf(line: #"{"id":4,"method":"container.kill","params":{"id":"x","signal":"SIGNOPE"}}"#)?.code == .invalidParams)
        // --cap-add ALL is what the host grants, not an unknown capability.
        let all = try d.run(["--rm", "--cap-add", "ALL"], Self.image, ["grep", "CapEff", "/proc/self/status"])
        #expect(all.code == 0 && !all.stdout.contains("0000000000000000"), "\(all)")
        // Image names outside docker's grammar are refused, in tags and in archives.
        for target in ["Bad Name", "../../../etc/x:1", String(repeating: "a", count: 5000), "a\nb"] {
            let e = try c.errorOf(Calls.ImageTag.self, TagParams(source: Self.image, target: target))
            #expect(e?.code == .invalidParams, "\(target.prefix(20)): \(String(describing: e))")
        }
        for tag in ["../../../etc/x:1", "line\\nbreak:1"] {
            let archive = try Self.dockerArchive(in: d.dir, repoTag: tag)
            let r = try d.sctr(["import", archive])
            #expect(r.code == 1 && r.stderr.contains("invalid reference format"), "\(tag): \(r)")
        }
        #expect(try d.sctr(["images", "-q"]).stdout.split(separator: "\n").count == 1, "only the good image")
        // Stream methods with no stream on the connection.
        #expect(try c.errorOf(Calls.StreamStdin.self, StdinParams(data: "aGkK"))?.code == .failedPrecondition)
    }

    @Test func execAndAttachOverTheRPCKeepTheConnectionServing() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        #expect(try d.importImage("layered-oci.tar").code == 0)
        let c = try RPCClient(path: d.socketPath)
        var options = CreateOptions(image: Self.image)
        options.cmd = ["sh", "-c", "read line; echo got $line; exit 4"]
        options.stdin = true
        options.cgroupParent = "/" + d.name
        let box = try c.call(Calls.ContainerCreate.self, options)
        // Attach, start, send stdin: output then the exit notice.
        let attach = c.send(Calls.ContainerAttach.self, ContainerParams(id: box.id))
        let (attached, _) = try c.final(attach)
        #expect(try attached.result(Calls.ContainerAttach.self).stdin)
        try c.call(Calls.ContainerStart.self, ContainerParams(id: box.id))
        try c.call(Calls.StreamStdin.self, StdinParams(data: Data("hello\n".utf8).base64EncodedString()))
        var output = Data(), exit: API.ExitStatus?
        while exit == nil, let line = try c.next() {
            guard line.id == .number(Double(attach)) else { continue }
            if let o = line.notice(API.Output.self) { output += Data(base64Encoded: o.data)! }
            exit = line.notice(API.ExitStatus.self)
        }
        #expect(String(decoding: output, as: UTF8.self) == "got hello\n")
        #expect(exit?.code == 4)
        #expect(try c.call(Calls.SystemVersion.self, Empty()).protocol == protocolVersion, "the connection still serves")
        // Exec: the reply (pid), output, the exit notice; then the connection answers again.
        options.cmd = ["sleep", "1000"]
        options.stdin = nil
        options.name = "sleeper"
        try c.call(Calls.ContainerRun.self, options)
        let exec = c.send(Calls.ContainerExec.self, ExecParams(id: "sleeper", cmd: ["sh", "-c", "echo out; echo err >&2; exit 3"]))
        let (started, _) = try c.final(exec)
        #expect(try started.result(Calls.ContainerExec.self).pid > 0)
        var streams: [String] = []
        exit = nil
        while exit == nil, let line = try c.next() {
            guard line.id == .number(Double(exec)) else { continue }
            if let o = line.notice(API.Output.self) { streams.append(o.stream.rawValue + ":" + String(decoding: Data(base64Encoded: o.data)!, as: UTF8.self)) }
            exit = line.notice(API.ExitStatus.self)
        }
        #expect(Set(streams) == ["stdout:out\n", "stderr:err\n"], "\(streams)")
        #expect(exit?.code == 3)
        let missing = try c.errorOf(Calls.ContainerExec.self, ExecParams(id: "sleeper", cmd: ["/no/such"]))
        #expect(missing?.code == .commandNotFound, "\(String(describing: missing))")
        // Pause and unpause: one name for the action in the method and the event.
        try c.call(Calls.ContainerPause.self, ContainerParams(id: "sleeper"))
        try c.call(Calls.ContainerUnpause.self, ContainerParams(id: "sleeper"))
        let s = c.send(Calls.EventsSubscribe.self, SubscribeParams(since: .sequence(0), filters: ["action": ["pause", "unpause"]]))
        _ = try c.final(s)
        var actions: [EventAction] = []
        while actions.count < 2, let line = try c.next() { if let e = line.notice(API.Event.self) { actions.append(e.action) } }
        #expect(actions == [.pause, .unpause])
    }

    @Test func oneDaemonPerRootAndTheSocketGoesWithIt() throws {
        let d = try DaemonInstance()
        defer { d.stop() }
        let second = try execute(DaemonInstance.binDir + "/scontainerd", ["--root", d.dir + "/root", "--state", d.dir + "/state2"])
        #expect(second.code != 0 && second.stderr.contains("another scontainerd"), "\(second)")
        let sameSocket = try execute(DaemonInstance.binDir + "/scontainerd", ["--root", d.dir + "/root2", "--state", d.dir + "/state2", "--socket", d.socketPath])
        #expect(sameSocket.code != 0 && sameSocket.stderr.contains("serving"), "\(sameSocket)")
        #expect(try d.sctr(["version"]).code == 0, "the first daemon still serves")
        let logFile = try String(contentsOfFile: d.dir + "/root/scontainerd.log", encoding: .utf8)
        #expect(logFile.contains("serving " + d.socketPath))
        d.terminate()
        #expect(!FileManager.default.fileExists(atPath: d.socketPath), "SIGTERM removes the socket")
    }

    /// A docker-archive of the layered image whose manifest names it `repoTag`.
    static func dockerArchive(in dir: String, repoTag: String) throws -> String {
        let work = dir + "/archive-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let archive = work + ".tar"
        try FileManager.default.copyItem(atPath: TestImages.dir + "/layered-docker.tar", toPath: archive)
        #expect(try execute("/bin/tar", ["-xf", archive, "-C", work, "manifest.json"]).code == 0)
        let manifest = try String(contentsOfFile: work + "/manifest.json", encoding: .utf8)
        guard let key = manifest.range(of: "\"RepoTags\""), let open = manifest[key.upperBound...].firstIndex(of: "["),
              let end = manifest[open...].firstIndex(of: "]") else {
            throw ClientError("no RepoTags in \(manifest)")
        }
        try (manifest[...open] + "\"\(repoTag)\"" + manifest[end...]).write(toFile: work + "/manifest.json", atomically: true, encoding: .utf8)
        #expect(try execute("/bin/tar", ["--delete", "-f", archive, "manifest.json"]).code == 0)
        #expect(try execute("/bin/tar", ["-rf", archive, "-C", work, "manifest.json"]).code == 0)
        return archive
    }
}
