import CLinux
import Foundation
import OCI
import Testing

/// sshim over real containers, created by srunc, runc and crun: logs, exit codes, exec, terminal
/// sessions, surviving its starter, and bad input on the control socket.
@Suite("sshim")
struct ShimTests {
    @Test(arguments: RuntimeUnderTest.underShim)
    func outputReachesTheLogInOrderWithStreamTags(_ runtime: RuntimeUnderTest) throws {
        let shim = try ShimInstance(runtime, shell("echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three; printf tail"))
        defer { shim.cleanup() }
        #expect(try shim.start().code == 0)
        #expect(shim.containerPid > 0)
        let client = try shim.connect()
        #expect(try client.call("state")["status"] as? String == "created")
        try client.call("start")
        #expect(try client.call("wait")["code"] as? Int == 0)
        let records = try shim.records()
        #expect(records.map { $0["stream"] as? String } == ["stdout", "stderr", "stdout", "stdout"])
        #expect(records.map { $0["log"] as? String } == ["one\n", "two\n", "three\n", "tail"])
        #expect(records.map { $0["partial"] as? Bool } == [nil, nil, nil, true])
        #expect(records.allSatisfy { ($0["time"] as? String)?.hasSuffix("Z") == true })
        // `logs` reads the same records back; tail keeps the last ones.
        let (end, events) = try client.reply(to: try client.request("logs", ["tail": 2]))
        #expect((end["result"] as? [String: Any])?["end"] as? String == "exited")
        #expect(events.compactMap { ($0["record"] as? [String: Any])?["log"] as? String } == ["three\n", "tail"])
    }

    @Test(arguments: RuntimeUnderTest.underShim)
    func hundredMegabytesWithNobodyAttachedLoseNoByte(_ runtime: RuntimeUnderTest) throws {
        // 100 MiB of 64-byte lines, each numbered, written as fast as the container can.
        let shim = try ShimInstance(runtime, shell("seq -w 1 1638400 | sed 's/$/ 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS/'"))
        defer { shim.cleanup() }
        #expect(try shim.start().code == 0)
        let client = try shim.connect()
        try client.call("start")
        #expect(try client.call("wait", seconds: 120)["code"] as? Int == 0)
        // 220 MB of records, checked with memchr/memcmp rather than a JSON parser per line: each
        // ends `"log":"NNNNNNN 0123…S\n"}` (the newline escaped), its 64 bytes of text in order.
        let data = try Data(contentsOf: URL(fileURLWithPath: shim.logPath))
        var lines = 0, bytes = 0, inOrder = true
        let suffix = Array(#" 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS\n"}"#.utf8)
        let marker = Array(#""stream":"stdout","log":""#.utf8)
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let base = raw.baseAddress!
            var at = 0
            while at < raw.count, let nl = memchr(base + at, 0x0a, raw.count - at) {
                let end = base.distance(to: nl)
                let text = end - suffix.count - 7
                guard text - marker.count > at, memcmp(base + text + 7, suffix, suffix.count) == 0,
                      memcmp(base + text - marker.count, marker, marker.count) == 0 else { inOrder = false; break }
                bytes += 64
                lines += 1
                if inOrder, Int(String(decoding: UnsafeRawBufferPointer(start: base + text, count: 7), as: UTF8.self)) != lines {
                    inOrder = false
                }
                at = end + 1
            }
        }
        #expect(lines == 1_638_400)
        #expect(bytes == 100 * 1024 * 1024)
        #expect(inOrder)
    }

    @Test func logRotatesBySizeAndKeepsTheNewestFiles() throws {
        let shim = try ShimInstance(.srunc, shell("seq 1 1000"))
        defer { shim.cleanup() }
        #expect(try shim.start(["--log-max-size", "4k", "--log-max-files", "3"]).code == 0)
        let client = try shim.connect()
        try client.call("start")
        try client.call("wait")
        let sizes = ["", ".1", ".2"].map { (try? FileManager.default.attributesOfItem(atPath: shim.logPath + $0)[.size] as? Int) ?? -1 }
        #expect(sizes.allSatisfy { $0 > 0 && $0 <= 4096 }, "\(sizes)")
        #expect(!FileManager.default.fileExists(atPath: shim.logPath + ".3"))
        // `logs` reads the kept files oldest first: a run of numbers ending at 1000.
        let (_, events) = try client.reply(to: try client.request("logs"))
        let numbers = events.compactMap { (($0["record"] as? [String: Any])?["log"] as? String).flatMap { Int($0.dropLast()) } }
        #expect(numbers.last == 1000)
        #expect(numbers.count > 50 && numbers == Array((1001 - numbers.count)...1000))
    }

    @Test(arguments: RuntimeUnderTest.underShim)
    func exitCodesAndSignalsAreReportedExactly(_ runtime: RuntimeUnderTest) throws {
        for (script, code) in [("exit 0", 0), ("exit 42", 42)] {
            let shim = try ShimInstance(runtime, shell(script))
            defer { shim.cleanup() }
            #expect(try shim.start().code == 0)
            let client = try shim.connect()
            try client.call("start")
            let exit = try client.call("wait")
            #expect(exit["code"] as? Int == code)
            #expect(exit["signal"] == nil)
            let file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: shim.stateDir + "/exit"))) as! [String: Any]
            #expect(file["code"] as? Int == code)
            #expect(try client.call("state")["status"] as? String == "stopped")
        }
        let killed = try ShimInstance(runtime, shell("sleep 1000"))
        defer { killed.cleanup() }
        try killed.start()
        let client = try killed.connect()
        try client.call("start")
        try client.call("kill", ["signal": "KILL"])
        let exit = try client.call("wait")
        #expect(exit["code"] as? Int == 137)
        #expect(exit["signal"] as? Int == 9)
        #expect(exit["oomKilled"] as? Bool == false)
    }

    @Test(arguments: RuntimeUnderTest.underShim)
    func outOfMemoryIsFlagged(_ runtime: RuntimeUnderTest) throws {
        let shim = try ShimInstance(runtime) { spec in
            spec.process!.args = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]
            var resources = Resources()
            resources.memory = Memory(limit: 32 << 20, swap: 32 << 20)
            spec.linux!.resources = resources
            spec.linux!.cgroupsPath = "/\(uniqueTestName("shim-oom"))"
        }
        defer { shim.cleanup() }
        #expect(try shim.start().code == 0)
        let client = try shim.connect()
        try client.call("start")
        let exit = try client.call("wait")
        #expect(exit["code"] as? Int == 137)
        #expect(exit["oomKilled"] as? Bool == true)
    }

    @Test(arguments: RuntimeUnderTest.underShim)
    func execReturnsItsOwnExitCode(_ runtime: RuntimeUnderTest) throws {
        let shim = try ShimInstance(runtime, shell("sleep 1000"))
        defer { shim.cleanup() }
        try shim.start()
        let client = try shim.connect()
        try client.call("start")
        let process: [String: Any] = ["args": ["sh", "-c", "echo out; echo err >&2; exit 3"], "cwd": "/", "env": ["PATH=/bin"],
                                      "user": ["uid": 0, "gid": 0]]
        let (reply, events) = try client.reply(to: try client.request("exec", ["process": process]))
        let result = reply["result"] as? [String: Any]
        #expect(result?["exitCode"] as? Int == 3, "\(reply)")
        #expect(String(decoding: outputBytes(events, stream: "stdout"), as: UTF8.self) == "out\n")
        #expect(String(decoding: outputBytes(events, stream: "stderr"), as: UTF8.self) == "err\n")
        #expect(try client.call("state")["status"] as? String == "running", "the init is untouched")
        #expect(try shim.records().isEmpty, "exec output is not the container's log")
    }

    @Test(arguments: RuntimeUnderTest.underShim)
    func terminalSessionThroughAttachAndResize(_ runtime: RuntimeUnderTest) throws {
        let shim = try ShimInstance(runtime) { spec in
            spec.process!.terminal = true
            spec.process!.args = ["sh"]
        }
        defer { shim.cleanup() }
        #expect(try shim.start(["--terminal", "--stdin"]).code == 0)
        let client = try shim.connect()
        let attached = try client.call("attach")
        #expect(attached["terminal"] as? Bool == true)
        try client.call("start")
        try client.call("stdin", ["data": Data("echo hi$((1+1))\n".utf8).base64EncodedString()])
        var seen = ""
        while !seen.contains("hi2\r\n") {
            let message = try client.readMessage()
            seen += String(decoding: outputBytes([message]), as: UTF8.self)
        }
        try client.call("resize", ["rows": 33, "cols": 101])
        try client.call("stdin", ["data": Data("stty size; exit 6\n".utf8).base64EncodedString()])
        var exitEvent: [String: Any]?
        while exitEvent == nil {
            let message = try client.readMessage()
            seen += String(decoding: outputBytes([message]), as: UTF8.self)
            if message["event"] as? String == "exit" { exitEvent = message["exit"] as? [String: Any] }
        }
        #expect(seen.contains("33 101\r\n"), "\(seen)")
        #expect(exitEvent?["code"] as? Int == 6)
        #expect(try shim.records().contains { ($0["log"] as? String)?.contains("33 101") == true }, "the session is logged")
    }

    @Test(arguments: RuntimeUnderTest.underShim)
    func survivesItsStarterAndKeepsTheExitCode(_ runtime: RuntimeUnderTest) throws {
        let shim = try ShimInstance(runtime, shell("sleep 0.5; exit 7"))
        defer { shim.cleanup() }
        // The starter is a shell that runs the shim and then lingers; it is killed with SIGKILL.
        let command = ([ShimBinary.path] + shim.arguments()).map(shellQuoted).joined(separator: " ")
        let dir = shim.bundle.dir
        let starter = try spawn("/bin/sh", ["-c", "\(command) > \(dir)-starter.out; exec sleep 1000"],
                                stdout: "/dev/null", stderr: "/dev/null")
        var pid: pid_t = 0
        try eventually("the starter prints the container's pid") {
            pid = pid_t((try? String(contentsOfFile: dir + "-starter.out", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
            return pid > 0
        }
        shim.containerPid = pid
        #expect(pid > 0)
        kill(starter, SIGKILL)
        waitForExit(starter)
        try? FileManager.default.removeItem(atPath: dir + "-starter.out")
        try shim.connect().call("start")
        // Nobody is connected when the container exits: the exit file must have the code.
        var record: [String: Any]?
        try eventually("the shim writes the exit file") {
            record = (try? Data(contentsOf: URL(fileURLWithPath: shim.stateDir + "/exit")))
                .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
            return record != nil
        }
        #expect(record?["code"] as? Int == 7)
        // A new client still gets wait's answer, from a socket or from `sshim ctl`.
        #expect(try shim.connect().call("wait")["code"] as? Int == 7)
        let ctl = try execute(ShimBinary.path, ["ctl", shim.stateDir, "wait"])
        #expect(ctl.code == 0 && ctl.stdout.contains("\"code\":7"), "\(ctl)")
        #expect(try execute(ShimBinary.path, ["ctl", shim.stateDir, "frobnicate"]).code == 1)
    }

    @Test(arguments: RuntimeUnderTest.underShim)
    func malformedRequestsGetErrorsAndTheShimKeepsServing(_ runtime: RuntimeUnderTest) throws {
        let shim = try ShimInstance(runtime, shell("sleep 1000"))
        defer { shim.cleanup() }
        try shim.start()
        let client = try shim.connect()
        for (line, code) in [("{not json", "invalid-json"), ("[1,2]", "invalid-request"), ("{\"id\":5}", "invalid-request"),
                             ("{\"id\":6,\"method\":\"frobnicate\"}", "unknown-method"),
                             ("{\"id\":7,\"method\":\"kill\",\"params\":{\"signal\":\"--all\"}}", "invalid-params"),
                             ("{\"id\":8,\"method\":\"resize\",\"params\":{\"rows\":-1}}", "invalid-params"),
                             ("{\"id\":9,\"method\":\"exec\",\"params\":{}}", "failed-precondition")] {
            client.sendLine(line)
            let reply = try client.readMessage()
            #expect((reply["error"] as? [String: Any])?["code"] as? String == code, "\(line) -> \(reply)")
        }
        #expect(try client.call("state")["status"] as? String == "created")
        try client.call("start")
        #expect(try client.call("state")["status"] as? String == "running")
    }

    @Test(arguments: RuntimeUnderTest.underShim)
    func failedCreateIsReportedAndLeavesNothing(_ runtime: RuntimeUnderTest) throws {
        let shim = try ShimInstance(runtime) { $0.process!.args = ["/no/such/program"] }
        defer { shim.cleanup() }
        let r = try shim.start()
        #expect(r.code == 1)
        #expect(r.stderr.contains("/no/such/program"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: shim.stateDir))
        #expect(!FileManager.default.fileExists(atPath: shim.logPath))
        #expect(HostCleanup.processes(mentioning: shim.stateDir).isEmpty)
        #expect(try shim.bundle.state() == nil, "no container left in the runtime")
    }
}
