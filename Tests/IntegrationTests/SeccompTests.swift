import CLinux
import Foundation
import OCI
import Testing

/// Syscall filtering, asserted by what the filtered syscalls return inside the container.
@Suite("seccomp") struct SeccompTests {
    func filter(_ rules: [SyscallRule], defaultAction: String = "SCMP_ACT_ALLOW") throws -> Seccomp {
        let json = try JSONEncoder().encode(rules)
        let text = #"{"defaultAction":"\#(defaultAction)","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":"#
            + String(decoding: json, as: UTF8.self) + "}"
        return try JSONDecoder().decode(Seccomp.self, from: Data(text.utf8))
    }

    func rule(_ names: [String], _ action: String, errno: UInt32? = nil, args: String = "[]") throws -> SyscallRule {
        var text = #"{"names":\#(try String(decoding: JSONEncoder().encode(names), as: UTF8.self)),"action":"\#(action)","args":\#(args)"#
        if let errno { text += #","errnoRet":\#(errno)"# }
        return try JSONDecoder().decode(SyscallRule.self, from: Data((text + "}").utf8))
    }

    @Test("denied syscalls return the configured errno, argument conditions apply, kill actions kill",
          arguments: RuntimeUnderTest.all)
    func actions(_ rt: RuntimeUnderTest) throws {
        let seccomp = try filter([
            try rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errno: 13),
            try rule(["chmod"], "SCMP_ACT_ERRNO", args: #"[{"index":1,"value":511,"op":"SCMP_CMP_EQ"}]"#),
            try rule(["fchmodat"], "SCMP_ACT_ERRNO", args: #"[{"index":2,"value":511,"op":"SCMP_CMP_EQ"}]"#),
            try rule(["sync"], "SCMP_ACT_KILL_PROCESS"),
            try rule(["not_a_syscall"], "SCMP_ACT_ERRNO"),
        ])
        let b = try TestBundle(rt) {
            shell("touch /tmp/a; mkdir /tmp/d; echo mkdir=$?; chmod 777 /tmp/a; echo chmod777=$?; chmod 755 /tmp/a; echo chmod755=$?; sync; echo sync=$?; grep ^Seccomp: /proc/self/status")(&$0)
            $0.linux!.seccomp = seccomp
        }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout == "mkdir=1\nchmod777=1\nchmod755=0\nsync=159\nSeccomp:\t2\n")
        #expect(r.stderr.contains("Permission denied"))
        #expect(r.stderr.contains("Operation not permitted"))
    }

    @Test("a compiled filter is kept per profile, root-only, and a damaged entry is compiled again")
    func compiledFilterCache() throws {
        let seccomp = try filter([try rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errno: 13)])
        let b = try TestBundle(.srunc) {
            shell("mkdir /tmp/d; echo mkdir=$?; grep ^Seccomp: /proc/self/status")(&$0)
            $0.linux!.seccomp = seccomp
        }
        defer { b.cleanup() }
        let expected = "mkdir=1\nSeccomp:\t2\n"
        #expect(try b.run().stdout == expected, "compiled")
        let cache = b.stateRoot + "/@seccomp"
        var st = stat()
        #expect(stat(cache, &st) == 0 && st.st_mode & 0o777 == 0o700 && st.st_uid == 0, "root-only")
        let entries = try FileManager.default.contentsOfDirectory(atPath: cache)
        #expect(entries.count == 1, "one profile, one entry: \(entries)")
        #expect(try b.run().stdout == expected, "from the cache")
        let after = try FileManager.default.contentsOfDirectory(atPath: cache)
        #expect(after == entries, "the same entry served it: \(after)")
        // A flipped byte in the stored key: the entry no longer matches, the filter is compiled
        // again and still enforced, and the entry is rewritten whole.
        let path = cache + "/" + entries[0]
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[10] ^= 0xff
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try b.run().stdout == expected, "damaged entry")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path))[10] == bytes[10] ^ 0xff, "rewritten")
    }

    @Test("an unknown action is an error naming it")
    func unknownAction() throws {
        let b = try TestBundle(.srunc) { $0.linux!.seccomp = try! filter([try! rule(["mkdir"], "SCMP_ACT_EXPLODE")]) }
        defer { b.cleanup() }
        let r = try b.run()
        #expect(r.code != 0)
        #expect(r.stderr.contains("SCMP_ACT_EXPLODE"))
        #expect(try b.state() == nil)
    }
}

/// SCMP_ACT_NOTIFY with listenerPath: a small listener in the test receives the notify fd with
/// the container's state and answers the container's mkdir itself.
@Suite("seccomp notify") struct SeccompNotifyTests {
    @Test("the listener receives the fd and answers a syscall", arguments: RuntimeUnderTest.all)
    func notify(_ rt: RuntimeUnderTest) throws {
        let b = try TestBundle(rt, shell("mkdir /tmp/made; echo mkdir=$?; ls /tmp"))
        defer { b.cleanup() }
        let path = b.dir + "/listener.sock"
        let seccomp = #"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"\#(path)","listenerMetadata":"meta-1","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_NOTIFY"}]}"#
        b.spec.linux!.seccomp = try JSONDecoder().decode(Seccomp.self, from: Data(seccomp.utf8))
        try b.writeConfig()
        let listener = try ConsoleTests().listenSocket(path)
        defer { close(listener) }
        let run = BackgroundRun { try b.run() }
        var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        try #require(poll(&p, 1, 10_000) == 1, "the runtime never connected to the listener")
        let conn = accept(listener, nil, nil)
        defer { close(conn) }
        var payload = [CChar](repeating: 0, count: 8192)
        let notifyFD = cl_recv_fd_payload(conn, &payload, payload.count)
        try #require(notifyFD >= 0)
        defer { close(notifyFD) }
        let message = try JSONSerialization.jsonObject(with: Data(String(decoding: payload.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).utf8)) as? [String: Any]
        #expect(message?["fds"] as? [String] == ["seccompFd"])
        #expect(message?["metadata"] as? String == "meta-1")
        #expect((message?["state"] as? [String: Any])?["id"] as? String == b.id)
        var n = pollfd(fd: notifyFD, events: Int16(POLLIN), revents: 0)
        try #require(poll(&n, 1, 10_000) == 1, "no notification arrived")
        let nr = cl_seccomp_answer_one(notifyFD, EROFS)
        #expect(nr == 83 || nr == 258)  // mkdir or mkdirat on x86_64
        let r = try run.value()
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout == "mkdir=1\n")
        #expect(r.stderr.contains("Read-only file system"))
    }

    /// spec-fixtures/syscall-probe.c, built static with the toolchain's clang.
    static let probe: String = {
        let out = NSTemporaryDirectory() + "srunc-syscall-probe-\(getpid())"
        let r = try! execute("/usr/bin/env", ["clang", "-static", "-O2", "-o", out, RuntimeUnderTest.packageRoot + "/spec-fixtures/syscall-probe.c"])
        precondition(r.code == 0, "building the syscall probe: \(r.stderr)")
        return out
    }()

    @Test("syscalls newer than any the profile names get ENOSYS, older unnamed ones the default", arguments: RuntimeUnderTest.all)
    func newSyscallsGetENOSYS(_ rt: RuntimeUnderTest) throws {
        // A docker-like profile: errno by default, everything up to rseq (334) allowed but reboot.
        var names: [String] = []
        for nr in Int32(0)...334 where nr != 169 {
            if let name = seccomp_syscall_resolve_num_arch(seccomp_arch_native(), nr) { names.append(String(cString: name)); free(name) }
        }
        let profile = try SeccompTests().filter([try SeccompTests().rule(names, "SCMP_ACT_ALLOW")], defaultAction: "SCMP_ACT_ERRNO")
        let b = try TestBundle(rt) {
            $0.process!.args = ["/probe", "451", "169"]  // cachestat (Linux 6.5), reboot
            $0.linux!.seccomp = profile
        }
        defer { b.cleanup() }
        try FileManager.default.copyItem(atPath: Self.probe, toPath: b.rootfs + "/probe")
        let r = try b.run()
        #expect(r.code == 0 && r.stdout == "451: Function not implemented\n169: Operation not permitted\n", "\(r)")
    }
}
